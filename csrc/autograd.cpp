// Gradients of the mixing ops, registered at the Autograd key so that they hold for every
// backend, under torch.compile and for the in-place forms on activations.
//
// Mixing is linear in the images, and the gradient of each form is its transpose: the op itself
// with transpose flipped (see ops.cpp). The backward is therefore one gather kernel, and it is
// differentiable again in the same way.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace cutmix_ext {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using GatherSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool);
using InplaceSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const at::Tensor&, std::optional<int64_t>, double);

c10::TypedOperatorHandle<GatherSig> gather_op(bool cutmix) {
  static const auto c = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("cutmix_ext::cutmix", "")
                            .typed<GatherSig>();
  static const auto m = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("cutmix_ext::mixup", "")
                            .typed<GatherSig>();
  return cutmix ? c : m;
}

c10::TypedOperatorHandle<InplaceSig> inplace_op(bool cutmix) {
  static const auto c = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("cutmix_ext::cutmix_", "")
                            .typed<InplaceSig>();
  static const auto m = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("cutmix_ext::mixup_", "")
                            .typed<InplaceSig>();
  return cutmix ? c : m;
}

struct Gather : public torch::autograd::Function<Gather> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& perm,
                            const at::Tensor& params, bool cutmix, bool transpose) {
    ctx->save_for_backward({perm, params});
    ctx->saved_data["cutmix"] = cutmix;
    ctx->saved_data["transpose"] = transpose;
    const at::AutoDispatchBelowADInplaceOrView below;
    return gather_op(cutmix).call(x, perm, params, transpose);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool cutmix = ctx->saved_data["cutmix"].toBool();
    const bool transpose = ctx->saved_data["transpose"].toBool();
    at::Tensor dx;
    if (grads[0].defined()) dx = gather_op(cutmix).call(grads[0], saved[0], saved[1], !transpose);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct Inplace : public torch::autograd::Function<Inplace> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& images,
                               const at::Tensor& labels, const at::Tensor& perm,
                               const at::Tensor& params, std::optional<int64_t> num_classes,
                               double label_smoothing, bool cutmix) {
    at::Tensor targets;
    {
      const at::AutoDispatchBelowADInplaceOrView below;
      targets = inplace_op(cutmix).call(images, labels, perm, params, num_classes, label_smoothing);
    }
    ctx->mark_dirty({images});
    ctx->mark_non_differentiable({targets});
    ctx->save_for_backward({perm, params});
    ctx->saved_data["cutmix"] = cutmix;
    return {images, targets};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool cutmix = ctx->saved_data["cutmix"].toBool();
    at::Tensor dx;
    if (grads[0].defined()) dx = gather_op(cutmix).call(grads[0], saved[0], saved[1], true);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

template <bool kCutmix>
at::Tensor gather_autograd(const at::Tensor& x, const at::Tensor& perm, const at::Tensor& params,
                           bool transpose) {
  return Gather::apply(x, perm, params, kCutmix, transpose);
}

template <bool kCutmix>
at::Tensor inplace_autograd(const at::Tensor& images, const at::Tensor& labels,
                            const at::Tensor& perm, const at::Tensor& params,
                            std::optional<int64_t> num_classes, double label_smoothing) {
  // Checked here, before anything is written: autograd would only object after the fact.
  if (at::GradMode::is_enabled()) {
    TORCH_CHECK_VALUE(!(images.defined() && images.requires_grad() && images.is_leaf()),
                      "images: a leaf tensor that requires grad cannot be mixed in place; use "
                      "the out-of-place cutmix_ext.cutmix / cutmix_ext.mixup, or mix a non-leaf "
                      "tensor (an activation)");
    TORCH_CHECK_VALUE(!(labels.defined() && labels.requires_grad()),
                      "labels: require grad, but the targets carry no gradient to the labels; "
                      "pass labels.detach()");
  }
  if (!(at::GradMode::is_enabled() && images.defined() && images.requires_grad())) {
    at::Tensor targets;
    {
      const at::AutoDispatchBelowADInplaceOrView below;
      targets = inplace_op(kCutmix).call(images, labels, perm, params, num_classes,
                                         label_smoothing);
    }
    // Saved copies of images elsewhere in a graph must see that they changed.
    if (!images.is_inference()) torch::autograd::impl::bump_version(images);
    return targets;
  }
  return Inplace::apply(images, labels, perm, params, num_classes, label_smoothing, kCutmix)[1];
}

using DrawnSig = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, std::optional<int64_t>, double, double, bool, bool,
    c10::string_view, std::optional<at::Generator>);

// The kernel draws its own parameters and keeps no table to transpose, so this form carries no
// gradient: it is for the input batch, refused for tensors that need one.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> device_sampled_autograd(
    const at::Tensor& images, const at::Tensor& labels, std::optional<int64_t> num_classes,
    double label_smoothing, double alpha, bool cutmix, bool per_sample, c10::string_view pairing,
    std::optional<at::Generator> generator) {
  if (at::GradMode::is_enabled()) {
    TORCH_CHECK_VALUE(!(images.defined() && images.requires_grad()),
                      "images: requires grad, but sampling=\"device\" carries no gradient; mix "
                      "activations with cutmix_ext.cutmix / cutmix_ext.mixup or nn.FeatureMix");
    TORCH_CHECK_VALUE(!(labels.defined() && labels.requires_grad()),
                      "labels: require grad, but the targets carry no gradient to the labels; "
                      "pass labels.detach()");
  }
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("cutmix_ext::mix_device_sampled_", "")
                             .typed<DrawnSig>();
  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> out;
  {
    const at::AutoDispatchBelowADInplaceOrView below;
    out = op.call(images, labels, num_classes, label_smoothing, alpha, cutmix, per_sample, pairing,
                  std::move(generator));
  }
  if (!images.is_inference()) torch::autograd::impl::bump_version(images);
  return out;
}

using ElemSig = at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&, const at::Tensor&,
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                           std::optional<int64_t>, double);

// The general form mixes input batches (per-sample CutMix or MixUp, CutOut, masks); it carries
// no gradient, and refuses tensors that need one rather than silently dropping it.
at::Tensor elem_autograd(const at::Tensor& images, const std::optional<at::Tensor>& labels,
                         const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                         const at::Tensor& mode, double fill, std::optional<int64_t> num_classes,
                         double label_smoothing) {
  if (at::GradMode::is_enabled()) {
    TORCH_CHECK_VALUE(!(images.defined() && images.requires_grad()),
                      "images: requires grad, but per-sample modes, CutOut and masks carry no "
                      "gradient; mix activations with cutmix_ext.cutmix / cutmix_ext.mixup");
    TORCH_CHECK_VALUE(!(labels.has_value() && labels->defined() && labels->requires_grad()),
                      "labels: require grad, but the targets carry no gradient to the labels; "
                      "pass labels.detach()");
  }
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("cutmix_ext::mix_", "")
                             .typed<ElemSig>();
  at::Tensor out;
  {
    const at::AutoDispatchBelowADInplaceOrView below;
    out = op.call(images, labels, perm, boxes, lam, mode, fill, num_classes, label_smoothing);
  }
  if (!images.is_inference()) torch::autograd::impl::bump_version(images);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cutmix_ext, Autograd, m) {
  m.impl("mix_", &elem_autograd);
  m.impl("mix_device_sampled_", &device_sampled_autograd);
  m.impl("cutmix", &gather_autograd<true>);
  m.impl("mixup", &gather_autograd<false>);
  m.impl("cutmix_", &inplace_autograd<true>);
  m.impl("mixup_", &inplace_autograd<false>);
}

}  // namespace cutmix_ext
