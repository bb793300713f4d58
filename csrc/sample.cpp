// Host-side sampling of the mixing parameters from a torch CPU generator: one call draws the
// partner permutation, the lambdas and the boxes, so `torch.manual_seed` reproduces a run and the
// kernels stay deterministic functions of their parameters.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/EmptyTensor.h>
#include <ATen/core/DistributionsHelper.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "plan.h"

namespace cutmix_ext {
namespace {

// log of a Gamma(alpha, 1) draw (Marsaglia & Tsang, 2000). Logs keep Beta(alpha, alpha) exact
// for small alpha, where both Gamma draws can underflow to zero.
double log_gamma_draw(double alpha, at::CPUGeneratorImpl* gen) {
  at::uniform_real_distribution<double> uniform(0.0, 1.0);
  at::normal_distribution<double> normal(0.0, 1.0);
  double log_boost = 0.0;
  if (alpha < 1.0) {  // Gamma(a) = Gamma(a + 1) * U^(1/a)
    log_boost = std::log(uniform(gen)) / alpha;
    alpha += 1.0;
  }
  const double d = alpha - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal(gen);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform(gen);
    if (u < 1.0 - 0.0331 * x * x * x * x ||
        std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return log_boost + std::log(d * v);
    }
  }
}

// The generator to draw from: torch's default CPU one when none is given. Callers lock its mutex.
at::CPUGeneratorImpl* cpu_generator(const std::optional<at::Generator>& generator) {
  TORCH_CHECK_VALUE(!generator.has_value() || generator->device().is_cpu(),
                    "generator: expected a CPU torch.Generator, got one on ",
                    generator.has_value() ? generator->device().str() : "");
  return at::get_generator_or_default<at::CPUGeneratorImpl>(generator,
                                                             at::detail::getDefaultCPUGenerator());
}

double beta_draw(double alpha, at::CPUGeneratorImpl* gen) {
  const double lx = log_gamma_draw(alpha, gen), ly = log_gamma_draw(alpha, gen);
  return 1.0 / (1.0 + std::exp(ly - lx));
}

int64_t randint(int64_t n, at::CPUGeneratorImpl* gen) {
  return at::uniform_int_from_to_distribution<int64_t>(static_cast<uint64_t>(n), 0)(gen);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sample(int64_t n, int64_t height, int64_t width,
                                                      double alpha, bool cutmix, bool per_sample,
                                                      c10::string_view pairing,
                                                      std::optional<at::Generator> generator) {
  TORCH_CHECK_VALUE(n >= 0, "n: must be non-negative, got ", n);
  TORCH_CHECK_VALUE(!cutmix || (height > 0 && width > 0),
                    "images: height and width must be positive, got ", height, "x", width);
  TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha > 0.0, "alpha: must be a positive number, got ",
                    alpha);
  TORCH_CHECK_VALUE(pairing == "roll" || pairing == "flip" || pairing == "random",
                    "pairing: expected 'roll', 'flip', 'random' or an int64 tensor, got '",
                    std::string(pairing), "'");
  auto* gen = cpu_generator(generator);
  std::lock_guard<std::mutex> lock(gen->mutex_);

  // Straight from the CPU allocator: these run on every call, and the dispatcher's at::empty
  // costs more than the draws.
  at::Tensor perm = at::detail::empty_cpu({n}, at::kLong);
  int64_t* p = perm.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    p[i] = pairing == "roll" ? (i + n - 1) % n : pairing == "flip" ? n - 1 - i : i;
  }
  if (pairing == "random") {  // Fisher-Yates
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[randint(i + 1, gen)]);
  }

  at::Tensor lam = at::detail::empty_cpu({n}, at::kDouble);
  at::Tensor boxes = at::detail::empty_cpu({cutmix ? n : 0, 4}, at::kLong);
  double* l = lam.data_ptr<double>();
  int64_t* b = boxes.data_ptr<int64_t>();
  const int64_t draws = per_sample ? n : std::min<int64_t>(n, 1);
  for (int64_t i = 0; i < draws; ++i) {
    const double beta = beta_draw(alpha, gen);
    if (!cutmix) {
      l[i] = beta;
      continue;
    }
    // The paper's and torchvision's box: centre uniform over the pixels, sides
    // W * sqrt(1 - lam) and H * sqrt(1 - lam), clipped to the image.
    const int64_t rx = randint(width, gen), ry = randint(height, gen);
    const double r = 0.5 * std::sqrt(1.0 - beta);
    const auto hw = static_cast<int64_t>(r * width), hh = static_cast<int64_t>(r * height);
    int64_t* row = b + 4 * i;
    row[0] = std::max<int64_t>(rx - hw, 0);
    row[1] = std::max<int64_t>(ry - hh, 0);
    row[2] = std::min<int64_t>(rx + hw, width);
    row[3] = std::min<int64_t>(ry + hh, height);
    l[i] = 1.0 - static_cast<double>((row[2] - row[0]) * (row[3] - row[1])) /
                     static_cast<double>(height * width);
  }
  for (int64_t i = draws; i < n; ++i) {
    l[i] = l[0];
    if (cutmix) std::copy(b, b + 4, b + 4 * i);
  }
  return {perm, boxes, lam};
}

// timm.data.Mixup's draws, per batch ("batch"), per pair i, N-1-i ("pair") or per sample
// ("elem"): with probability `prob`, CutMix (probability switch_prob when both alphas are set)
// or MixUp, lam ~ Beta(alpha, alpha). timm's box (timm 1.0): sides c = int(H * sqrt(1 - lam)),
// centre uniform, from centre - c // 2 to centre + (c + 1) // 2, clipped; with cutmix_minmax =
// (lo, hi), sides uniform in [int(H * lo), int(H * hi)) placed uniformly inside the image (every
// position, the last one included). lam becomes the exact area left when
// correct_lam or cutmix_minmax. Partners N-1-i; an odd batch's middle sample in "pair" mode is its
// own partner and stays as it is. Returns (perm, boxes, lam, mode) for the op mix_: mode 1 (blend)
// for MixUp samples, whose box is the whole image; 0 (paste) otherwise.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> sample_timm(
    int64_t n, int64_t height, int64_t width, double mixup_alpha, double cutmix_alpha,
    std::optional<at::ArrayRef<double>> cutmix_minmax, double prob, double switch_prob,
    c10::string_view mode, bool correct_lam, std::optional<at::Generator> generator) {
  TORCH_CHECK_VALUE(n >= 0, "n: must be non-negative, got ", n);
  TORCH_CHECK_VALUE(height > 0 && width > 0, "images: height and width must be positive, got ",
                    height, "x", width);
  TORCH_CHECK_VALUE(mode == "batch" || mode == "pair" || mode == "elem",
                    "mode: expected 'batch', 'pair' or 'elem', got '", std::string(mode), "'");
  const bool minmax = cutmix_minmax.has_value();
  int64_t lo_h = 0, hi_h = 0, lo_w = 0, hi_w = 0;
  if (minmax) {
    TORCH_CHECK_VALUE(cutmix_minmax->size() == 2, "cutmix_minmax: expected (min, max), got ",
                      cutmix_minmax->size(), " values");
    const double lo = (*cutmix_minmax)[0], hi = (*cutmix_minmax)[1];
    lo_h = static_cast<int64_t>(height * lo), hi_h = static_cast<int64_t>(height * hi);
    lo_w = static_cast<int64_t>(width * lo), hi_w = static_cast<int64_t>(width * hi);
    TORCH_CHECK_VALUE(hi_h > lo_h && hi_w > lo_w, "cutmix_minmax: gives box sides in [", lo_h,
                      ", ", hi_h, ") x [", lo_w, ", ", hi_w, "), an empty range");
  }
  const bool both = cutmix_alpha > 0.0 && mixup_alpha > 0.0;
  const bool only_cut = cutmix_alpha > 0.0 || minmax;
  TORCH_CHECK_VALUE(both || only_cut || mixup_alpha > 0.0,
                    "mixup_alpha, cutmix_alpha: one of them must be positive");
  auto* gen = cpu_generator(generator);
  std::lock_guard<std::mutex> lock(gen->mutex_);
  at::uniform_real_distribution<double> uniform(0.0, 1.0);

  const int64_t draws = mode == "batch" ? std::min<int64_t>(n, 1) : mode == "pair" ? n / 2 : n;
  at::Tensor perm = at::empty({n}, at::kLong), boxes = at::zeros({n, 4}, at::kLong);
  at::Tensor lam = at::empty({n}, at::kDouble), kind = at::zeros({n}, at::kChar);
  int64_t* p = perm.data_ptr<int64_t>();
  int64_t* b = boxes.data_ptr<int64_t>();
  double* l = lam.data_ptr<double>();
  int8_t* k = kind.data_ptr<int8_t>();
  for (int64_t i = 0; i < n; ++i) {
    p[i] = n - 1 - i;
    l[i] = 1.0;
  }
  for (int64_t i = 0; i < draws; ++i) {
    const bool use_cut = both ? uniform(gen) < switch_prob : only_cut;
    double v = beta_draw(use_cut ? (cutmix_alpha > 0.0 ? cutmix_alpha : 1.0) : mixup_alpha, gen);
    if (prob < 1.0 && !(uniform(gen) < prob)) v = 1.0;
    int64_t* row = b + 4 * i;
    if (use_cut && v < 1.0) {
      if (minmax) {
        const int64_t ch = lo_h + randint(hi_h - lo_h, gen), cw = lo_w + randint(hi_w - lo_w, gen);
        const int64_t y1 = randint(height - ch + 1, gen), x1 = randint(width - cw + 1, gen);
        row[0] = x1, row[1] = y1, row[2] = x1 + cw, row[3] = y1 + ch;
      } else {
        const double ratio = std::sqrt(1.0 - v);
        const auto ch = static_cast<int64_t>(height * ratio), cw = static_cast<int64_t>(width * ratio);
        const int64_t cy = randint(height, gen), cx = randint(width, gen);
        row[0] = std::clamp<int64_t>(cx - cw / 2, 0, width);
        row[1] = std::clamp<int64_t>(cy - ch / 2, 0, height);
        row[2] = std::clamp<int64_t>(cx + (cw + 1) / 2, 0, width);
        row[3] = std::clamp<int64_t>(cy + (ch + 1) / 2, 0, height);
      }
      if (correct_lam || minmax) {
        v = 1.0 - static_cast<double>((row[2] - row[0]) * (row[3] - row[1])) /
                      static_cast<double>(height * width);
      }
    } else if (!use_cut && v < 1.0) {
      row[2] = width, row[3] = height;
      k[i] = kModeBlend;
    }
    // timm keeps per-sample and per-pair lam in a float32 array (so 1 - lam and the blend are
    // float32 arithmetic on that value), the batch's lam in a Python float.
    l[i] = mode == "batch" ? v : static_cast<double>(static_cast<float>(v));
  }
  // One draw for the batch, or the pair i, N-1-i sharing draw i.
  for (int64_t i = draws; i < n; ++i) {
    const int64_t from = mode == "batch" ? 0 : i >= n - draws ? n - 1 - i : -1;
    if (from < 0) continue;  // the middle sample of an odd batch in "pair" mode
    std::copy(b + 4 * from, b + 4 * from + 4, b + 4 * i);
    l[i] = l[from];
    k[i] = k[from];
  }
  return {perm, boxes, lam, kind};
}

// Which of `sites` candidate layers mixes this step, or -1 (no mixing, probability 1 - p).
at::Tensor choose(int64_t sites, double p, std::optional<at::Generator> generator) {
  TORCH_CHECK_VALUE(sites >= 1, "sites: must be at least 1, got ", sites);
  TORCH_CHECK_VALUE(p >= 0.0 && p <= 1.0, "p: must be in [0, 1], got ", p);
  auto* gen = cpu_generator(generator);
  std::lock_guard<std::mutex> lock(gen->mutex_);
  int64_t site = -1;
  if (at::uniform_real_distribution<double>(0.0, 1.0)(gen) < p) {
    site = sites == 1 ? 0 : randint(sites, gen);
  }
  return at::scalar_tensor(site, at::kLong);
}

using Apply = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                         const at::Tensor&, std::optional<int64_t>, double);

// Draws the parameters for this batch and applies them through cutmix_ / mixup_, which then
// dispatch to the CPU or CUDA kernels: one call from Python instead of two.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> sample_and_apply(
    bool cutmix, const at::Tensor& images, const at::Tensor& labels,
    std::optional<int64_t> num_classes, double label_smoothing, double alpha,
    c10::string_view pairing, const std::optional<at::Tensor>& perm, bool per_sample,
    std::optional<at::Generator> generator) {
  check_image_shape(images);
  // Through the dispatcher, so that under torch.compile's fake tensors the fake sampler runs.
  static const auto draw = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("cutmix_ext::sample", "")
                               .typed<decltype(sample)>();
  auto [p, boxes, lam] = draw.call(images.size(0), images.size(-2), images.size(-1), alpha, cutmix,
                                   per_sample, perm.has_value() ? "roll" : pairing, generator);
  if (perm.has_value()) {
    TORCH_CHECK_TYPE(perm->scalar_type() == at::kLong || perm->scalar_type() == at::kInt,
                     "pairing: expected an int64 tensor of partners, got dtype ",
                     dtype_name(perm->scalar_type()));
    p = perm->to(at::kCPU, at::kLong, /*non_blocking=*/false, /*copy=*/true);
  }
  static const auto apply_cutmix = c10::Dispatcher::singleton()
                                       .findSchemaOrThrow("cutmix_ext::cutmix_", "")
                                       .typed<Apply>();
  static const auto apply_mixup = c10::Dispatcher::singleton()
                                      .findSchemaOrThrow("cutmix_ext::mixup_", "")
                                      .typed<Apply>();
  at::Tensor targets = cutmix ? apply_cutmix.call(images, labels, p, boxes, num_classes,
                                                  label_smoothing)
                              : apply_mixup.call(images, labels, p, lam, num_classes,
                                                 label_smoothing);
  return {targets, p, boxes, lam};
}

template <bool kCutmix>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> sampled(
    const at::Tensor& images, const at::Tensor& labels, std::optional<int64_t> num_classes,
    double label_smoothing, double alpha, c10::string_view pairing,
    const std::optional<at::Tensor>& perm, bool per_sample, std::optional<at::Generator> gen) {
  return sample_and_apply(kCutmix, images, labels, num_classes, label_smoothing, alpha, pairing,
                          perm, per_sample, std::move(gen));
}

}  // namespace

TORCH_LIBRARY_IMPL(cutmix_ext, CompositeExplicitAutograd, m) {
  m.impl("sample", &sample);
  m.impl("sample_timm", &sample_timm);
  m.impl("choose", &choose);
}

TORCH_LIBRARY_IMPL(cutmix_ext, CompositeImplicitAutograd, m) {
  m.impl("cutmix_sampled_", &sampled<true>);
  m.impl("mixup_sampled_", &sampled<false>);
}

}  // namespace cutmix_ext
