// CUDA backend, torch-facing half: checks the call (shared with the CPU backend), allocates the
// targets and launches the single kernel on the current stream. The kernels live in
// mix_kernel.cu, which sees none of torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <string>

#include "../plan.h"
#include "launch.h"

namespace cutmix_ext {
namespace {

// Pinned host rows copied to the device on the current stream, without blocking the host.
template <typename Row>
at::Tensor rows_on_device(const std::vector<Row>& rows, const at::Device& device) {
  const int64_t bytes = static_cast<int64_t>(rows.size() * sizeof(Row));
  at::Tensor host = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  std::memcpy(host.data_ptr(), rows.data(), bytes);
  return host.to(device, /*non_blocking=*/true);
}

// Host parameters travel inside the launch (or in a pinned buffer copied to the device): a CUDA
// graph being captured would freeze them, and the buffer would be freed after the capture. Asked
// under the tensors' device guard: the capture is on that device's current stream.
void refuse_capture(const char* what) {
  TORCH_CHECK_VALUE(c10::cuda::currentStreamCaptureStatusMayInitCtx() ==
                        c10::cuda::CaptureStatus::None,
                    "params: drawn on the host, they would be frozen into the CUDA graph being "
                    "captured and every replay would ", what);
}

void check_row(const char* name, int64_t row_bytes) {
  TORCH_CHECK_VALUE(row_bytes < kMaxRowBytes, name, ": a row of ", row_bytes,
                    " bytes; the CUDA kernels take rows (W, times C if channels_last) under 2 GiB");
}
void check_row(const MixArgs& m) { check_row("images", m.w * m.q * m.elem_size); }

at::Tensor launch_planned(MixOp op, Plan& p, const at::Tensor& images) {
  TORCH_CHECK_VALUE(images.is_cuda(), "images: expected a CUDA tensor, got ", images.device());
  check_row(p.args);
  TORCH_CHECK_VALUE(p.args.n <= kMaxBatch, "images: the CUDA kernels mix at most ", kMaxBatch,
                    " samples per call, got N = ", p.args.n);
  const c10::cuda::CUDAGuard guard(images.device());
  refuse_capture("mix with the same boxes; pass sampling=\"device\" to draw inside the graph");
  at::Tensor targets = allocate_targets(p, images);
  if (p.args.n == 0) return targets;

  // Up to kInlineSamples rows ride in the kernel's parameters; larger tables get one async copy.
  const Sample* inline_rows = nullptr;
  at::Tensor device_rows;
  p.args.table = nullptr;
  if (needs_table(p)) {
    if (p.args.n <= kInlineSamples) {
      inline_rows = p.table.data();
    } else {
      device_rows = rows_on_device(p.table, images.device());
      p.args.table = static_cast<const Sample*>(device_rows.data_ptr());
    }
  }
  C10_CUDA_CHECK(launch_mix(op, p.args, inline_rows, c10::cuda::getCurrentCUDAStream()));
  return targets;
}

at::Tensor mix_cuda(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
                    const at::Tensor& perm, const at::Tensor& params,
                    std::optional<int64_t> num_classes, double label_smoothing) {
  Plan p = make_plan(cutmix, images, labels, perm, params, num_classes, label_smoothing);
  return launch_planned(cutmix ? kOpCutMix : kOpMixUp, p, images);
}

at::Tensor elem_cuda_op(const at::Tensor& images, const std::optional<at::Tensor>& labels,
                        const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                        const at::Tensor& mode, double fill, std::optional<int64_t> num_classes,
                        double label_smoothing) {
  Plan p = make_elem_plan(images, labels.value_or(at::Tensor()), perm, boxes, lam, mode, fill,
                          num_classes, label_smoothing);
  return launch_planned(kOpElem, p, images);
}

at::Tensor gather_cuda(bool cutmix, const at::Tensor& x, const at::Tensor& perm,
                       const at::Tensor& params, bool transpose) {
  GatherPlan g = make_gather_plan(cutmix, transpose, x, perm, params);
  TORCH_CHECK_VALUE(x.is_cuda(), "x: expected a CUDA tensor, got ", x.device());
  check_row("x", g.args.w * g.args.q * g.args.elem_size);
  const c10::cuda::CUDAGuard guard(x.device());
  refuse_capture("apply the same boxes; the out-of-place form (cutmix, mixup, FeatureMix and "
                 "every backward) cannot be captured");
  if (g.args.n == 0) return g.out;
  const GatherRow* inline_rows = nullptr;
  at::Tensor device_rows;
  g.args.table = nullptr;
  if (g.args.n <= kGatherInlineRows) {
    inline_rows = g.rows.data();
  } else {
    device_rows = rows_on_device(g.rows, x.device());
    g.args.table = static_cast<const GatherRow*>(device_rows.data_ptr());
  }
  C10_CUDA_CHECK(launch_gather(g.args, inline_rows, c10::cuda::getCurrentCUDAStream()));
  return g.out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> detection_boxes_cuda(
    const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
    const std::optional<at::Tensor>& patch, const at::Tensor& lam, int64_t height, int64_t width,
    double min_visibility) {
  const Plan plan =
      make_detection_plan(boxes, idx, perm, patch, lam, height, width, min_visibility);
  TORCH_CHECK_VALUE(boxes.is_cuda(), "boxes: expected a CUDA tensor, got ", boxes.device());
  const c10::cuda::CUDAGuard guard(boxes.device());
  refuse_capture("keep the same boxes; detection batches cannot be captured");
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t m = b.size(0), n = perm.size(0);
  if (m == 0) {
    BoxArgs none{};
    const BoxOutputs o = box_outputs(none, b, ix, 0);
    return {o.boxes, o.src, o.dst, o.own, o.weights};
  }
  if (n == 0) refuse_bad_boxes(b, ix, n);  // every box belongs to a sample outside the batch
  at::Tensor scratch = at::empty({3 * n + 1}, ix.options().dtype(at::kInt));
  at::Tensor table = rows_on_device(plan.table, b.device());
  BoxArgs a = make_box_args(b, ix, static_cast<const Sample*>(table.data_ptr()), n, height, width,
                            min_visibility, patch.has_value(), scratch.data_ptr<int32_t>());
  // Room for every row there can be (each box kept and pasted), cut to the rows written: views
  // of 2m rows, which cost less than a second pass to size them.
  const BoxOutputs o = box_outputs(a, b, ix, 2 * m);
  C10_CUDA_CHECK(launch_detection_boxes(a, c10::cuda::getCurrentCUDAStream()));
  const int64_t rows = scratch[2 * n].item<int64_t>();  // the outputs' size: the call's one wait
  if (rows < 0) refuse_bad_boxes(b, ix, n);
  TORCH_CHECK(rows >= 0, "detection_boxes: the kernel reported bad boxes the host cannot find");
  return {o.boxes.narrow(0, 0, rows), o.src.narrow(0, 0, rows), o.dst.narrow(0, 0, rows),
          o.own.narrow(0, 0, rows), o.weights.narrow(0, 0, rows)};
}

at::Tensor detection_choose_cuda(const at::Tensor& boxes, const at::Tensor& idx,
                                const at::Tensor& perm, const at::Tensor& candidates,
                                int64_t height, int64_t width, double min_visibility) {
  const std::vector<int32_t> rows =
      make_choose_rows(boxes, idx, perm, candidates, height, width, min_visibility);
  TORCH_CHECK_VALUE(boxes.is_cuda(), "boxes: expected a CUDA tensor, got ", boxes.device());
  const c10::cuda::CUDAGuard guard(boxes.device());
  refuse_capture("keep the same patches; detection batches cannot be captured");
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t n = perm.size(0), k = candidates.size(1);
  if (n == 0 || b.size(0) == 0) {  // no box to avoid nor to paste: every sample left alone
    refuse_bad_boxes(b, ix, n);
    return at::zeros({n, 4}, perm.options().dtype(at::kLong));
  }
  // The patches and, in the row after them, the status: one copy back, the call's one wait.
  at::Tensor out = at::empty({n + 1, 4}, b.options().dtype(at::kLong));
  at::Tensor marks = at::empty({n * k}, ix.options().dtype(at::kInt));
  const at::Tensor device_rows = rows_on_device(rows, b.device());
  ChooseArgs a = make_choose_args(b, ix, static_cast<const int32_t*>(device_rows.data_ptr()), n, k,
                                  height, width, min_visibility, marks.data_ptr<int32_t>(),
                                  out.data_ptr<int64_t>());
  C10_CUDA_CHECK(launch_detection_choose(a, c10::cuda::getCurrentCUDAStream()));
  const at::Tensor host = out.cpu();
  if (host[n][0].item<int64_t>() != 0) refuse_bad_boxes(b, ix, n);
  TORCH_CHECK(host[n][0].item<int64_t>() == 0,
              "detection_choose: the kernel reported bad boxes the host cannot find");
  return host.narrow(0, 0, n);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> mix_device_sampled(
    const at::Tensor& images, const at::Tensor& labels, std::optional<int64_t> num_classes,
    double label_smoothing, double alpha, bool cutmix, bool per_sample, c10::string_view pairing,
    std::optional<at::Generator> generator) {
  TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha > 0.0, "alpha: must be a positive number, got ",
                    alpha);
  TORCH_CHECK_VALUE(pairing == "roll" || pairing == "flip" || pairing == "random",
                    "pairing: expected 'roll', 'flip' or 'random' with sampling=\"device\", got '",
                    std::string(pairing), "'");
  Plan p = make_drawn_plan(cutmix, images, labels, num_classes, label_smoothing);
  TORCH_CHECK_VALUE(images.is_cuda(), "images: sampling=\"device\" needs a CUDA tensor, got ",
                    images.device());
  check_row(p.args);
  TORCH_CHECK_VALUE(p.args.n <= kMaxDrawnBatch, "images: sampling=\"device\" mixes at most ",
                    kMaxDrawnBatch, " samples per call, got N = ", p.args.n);
  TORCH_CHECK_VALUE(!generator.has_value() || generator->device().is_cuda(),
                    "generator: expected a CUDA torch.Generator with sampling=\"device\", got one on ",
                    generator.has_value() ? generator->device().str() : "");
  const c10::cuda::CUDAGuard guard(images.device());
  const int64_t n = p.args.n;
  at::Tensor targets = allocate_targets(p, images);
  const auto opts = images.options();
  at::Tensor perm = at::empty({n}, opts.dtype(at::kLong));
  at::Tensor boxes = at::empty({cutmix ? n : 0, 4}, opts.dtype(at::kLong));
  at::Tensor lam = at::empty({n}, opts.dtype(at::kDouble));
  if (n == 0) return {targets, perm, boxes, lam};

  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(images.device().index()));
  at::PhiloxCudaState state;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    state = gen->philox_cuda_state(kDrawWords);
  }
  DeviceDraw d{};
  if (state.captured_) {
    d.captured = 1;
    d.seed_ptr = state.seed_.ptr;
    d.offset_ptr = state.offset_.ptr;
    d.offset_intragraph = state.offset_intragraph_;
  } else {
    d.seed = state.seed_.val;
    d.offset = state.offset_.val;
  }
  d.per_sample = per_sample;
  d.pairing = pairing == "roll" ? 0 : pairing == "flip" ? 1 : 2;
  d.alpha = alpha;
  d.perm_out = perm.data_ptr<int64_t>();
  d.boxes_out = cutmix ? boxes.data_ptr<int64_t>() : nullptr;
  d.lam_out = lam.data_ptr<double>();
  C10_CUDA_CHECK(launch_mix_drawn(cutmix, p.args, d, c10::cuda::getCurrentCUDAStream()));
  return {targets, perm, boxes, lam};
}

at::Tensor cutmix_cuda_op(const at::Tensor& images, const at::Tensor& labels,
                          const at::Tensor& perm, const at::Tensor& boxes,
                          std::optional<int64_t> num_classes, double label_smoothing) {
  return mix_cuda(true, images, labels, perm, boxes, num_classes, label_smoothing);
}

at::Tensor mixup_cuda_op(const at::Tensor& images, const at::Tensor& labels,
                         const at::Tensor& perm, const at::Tensor& lam,
                         std::optional<int64_t> num_classes, double label_smoothing) {
  return mix_cuda(false, images, labels, perm, lam, num_classes, label_smoothing);
}

}  // namespace

TORCH_LIBRARY_IMPL(cutmix_ext, CUDA, m) {
  m.impl("cutmix_", &cutmix_cuda_op);
  m.impl("mixup_", &mixup_cuda_op);
  m.impl("mix_", &elem_cuda_op);
  m.impl("mix_device_sampled_", &mix_device_sampled);
  m.impl("detection_boxes", &detection_boxes_cuda);
  m.impl("detection_choose", &detection_choose_cuda);
  m.impl("cutmix", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& boxes,
                      bool transpose) { return gather_cuda(true, x, perm, boxes, transpose); });
  m.impl("mixup", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& lam,
                     bool transpose) { return gather_cuda(false, x, perm, lam, transpose); });
}

}  // namespace cutmix_ext
