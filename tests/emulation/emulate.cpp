// The CUDA kernels, run on the CPU through cuda_shim.h, behind an op the tests compare with the
// CPU backend: cutmix_ext_emulated::mix (in place), ::gather (the out-of-place form) and
// ::detection_boxes.
#include "cuda_shim.h"
// clang-format off
#include "../../csrc/cuda/mix_kernel.cu"
#include "../../csrc/cuda/mix_large.cu"
#include "../../csrc/cuda/mix_rows64.cu"
#include "../../csrc/cuda/mix_rows960.cu"
#include "../../csrc/cuda/mix_drawn.cu"
#include "../../csrc/cuda/gather_kernel.cu"
#include "../../csrc/cuda/detection_kernel.cu"
// clang-format on
#include <ATen/ATen.h>
#include <ATen/core/PhiloxRNGEngine.h>
#include <torch/library.h>

#include "../../csrc/plan.h"

namespace {

at::Tensor mix(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
               const at::Tensor& perm, const at::Tensor& params, std::optional<int64_t> num_classes,
               double label_smoothing, bool table_in_memory,
               const std::optional<at::Tensor>& unchecked_labels) {
  using namespace cutmix_ext;
  Plan p = make_plan(cutmix, images, labels, perm, params, num_classes, label_smoothing);
  // Labels the host never checked, as CUDA labels are: the kernels must guard them themselves.
  if (unchecked_labels.has_value()) p.args.labels = unchecked_labels->data_ptr();
  at::Tensor targets = allocate_targets(p, images);
  if (p.args.n == 0) return targets;
  const Sample* inline_rows = nullptr;
  p.args.table = nullptr;
  if (needs_table(p)) {
    if (p.args.n <= kInlineSamples && !table_in_memory) {
      inline_rows = p.table.data();
    } else {
      p.args.table = p.table.data();  // stands in for the device copy
    }
  }
  TORCH_CHECK(launch_mix(cutmix ? kOpCutMix : kOpMixUp, p.args, inline_rows, nullptr) == cudaSuccess);
  return targets;
}

// The general op (`mix_`), as mix above.
at::Tensor elem(const at::Tensor& images, const std::optional<at::Tensor>& labels,
                const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                const at::Tensor& mode, double fill, std::optional<int64_t> num_classes,
                double label_smoothing, bool table_in_memory) {
  using namespace cutmix_ext;
  Plan p = make_elem_plan(images, labels.value_or(at::Tensor()), perm, boxes, lam, mode, fill,
                          num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  if (p.args.n == 0) return targets;
  const bool inline_rows = p.args.n <= kInlineSamples && !table_in_memory;
  p.args.table = inline_rows ? nullptr : p.table.data();
  TORCH_CHECK(launch_mix(kOpElem, p.args, inline_rows ? p.table.data() : nullptr, nullptr) ==
              cudaSuccess);
  return targets;
}

at::Tensor gather(bool cutmix, const at::Tensor& x, const at::Tensor& perm,
                  const at::Tensor& params, bool transpose, bool table_in_memory) {
  using namespace cutmix_ext;
  GatherPlan g = make_gather_plan(cutmix, transpose, x, perm, params);
  if (g.args.n == 0) return g.out;
  const bool inline_rows = g.args.n <= kGatherInlineRows && !table_in_memory;
  g.args.table = inline_rows ? nullptr : g.rows.data();
  TORCH_CHECK(launch_gather(g.args, inline_rows ? g.rows.data() : nullptr, nullptr) == cudaSuccess);
  return g.out;
}

// detection_boxes as cuda/mix_cuda.cpp launches it: outputs of 2m rows, cut to those written.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> detection_boxes(
    const at::Tensor& boxes, const at::Tensor& idx, const at::Tensor& perm,
    const std::optional<at::Tensor>& patch, const at::Tensor& lam, int64_t height, int64_t width,
    double min_visibility) {
  using namespace cutmix_ext;
  const Plan plan =
      make_detection_plan(boxes, idx, perm, patch, lam, height, width, min_visibility);
  const at::Tensor b = boxes.contiguous(), ix = idx.contiguous();
  const int64_t m = b.size(0), n = perm.size(0);
  std::vector<int32_t> scratch(3 * n + 1, 12345);  // garbage: the kernel clears what it uses
  BoxArgs a = make_box_args(b, ix, plan.table.data(), n, height, width, min_visibility,
                            patch.has_value(), scratch.data());
  BoxOutputs o = box_outputs(a, b, ix, 2 * m);
  int64_t rows = 0;
  if (m > 0) {
    TORCH_CHECK(launch_detection_boxes(a, nullptr) == cudaSuccess);
    rows = scratch[2 * n];
    TORCH_CHECK_VALUE(rows >= 0, "idx: a box belongs to a sample outside the batch of ", n);
  }
  return {o.boxes.narrow(0, 0, rows), o.src.narrow(0, 0, rows), o.dst.narrow(0, 0, rows),
          o.own.narrow(0, 0, rows), o.weights.narrow(0, 0, rows)};
}

// sampling="device" with the given generator state. captured=True reads seed and offset through
// pointers, as during CUDA graph capture, with `intragraph` added to the offset.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> mix_drawn(
    bool cutmix, const at::Tensor& images, const at::Tensor& labels,
    std::optional<int64_t> num_classes, double label_smoothing, double alpha, bool per_sample,
    int64_t pairing, int64_t seed, int64_t offset, bool captured, int64_t intragraph) {
  using namespace cutmix_ext;
  Plan p = make_drawn_plan(cutmix, images, labels, num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  const int64_t n = p.args.n;
  at::Tensor perm = at::empty({n}, at::kLong), boxes = at::empty({cutmix ? n : 0, 4}, at::kLong);
  at::Tensor lam = at::empty({n}, at::kDouble);
  static int64_t seed_cell, offset_cell;
  seed_cell = seed;
  offset_cell = offset;
  DeviceDraw d{};
  if (captured) {
    d.captured = 1, d.seed_ptr = &seed_cell, d.offset_ptr = &offset_cell;
    d.offset_intragraph = static_cast<uint64_t>(intragraph);
  } else {
    d.seed = static_cast<uint64_t>(seed), d.offset = static_cast<uint64_t>(offset);
  }
  d.per_sample = per_sample, d.pairing = static_cast<int32_t>(pairing), d.alpha = alpha;
  d.perm_out = perm.data_ptr<int64_t>(), d.lam_out = lam.data_ptr<double>();
  d.boxes_out = cutmix ? boxes.data_ptr<int64_t>() : nullptr;
  if (n > 0) TORCH_CHECK(launch_mix_drawn(cutmix, p.args, d, nullptr) == cudaSuccess);
  return {targets, perm, boxes, lam};
}

// `count` words of the kernels' Philox stream and of torch's own at::Philox4_32.
std::tuple<at::Tensor, at::Tensor> philox_words(int64_t seed, int64_t subsequence, int64_t offset,
                                                int64_t count) {
  at::Tensor ours = at::empty({count}, at::kLong), torchs = at::empty({count}, at::kLong);
  cutmix_ext::PhiloxStream s(static_cast<uint64_t>(seed), static_cast<uint64_t>(subsequence),
                             static_cast<uint64_t>(offset));
  at::Philox4_32 engine(static_cast<uint64_t>(seed), static_cast<uint64_t>(subsequence),
                        static_cast<uint64_t>(offset));
  for (int64_t i = 0; i < count; ++i) {
    ours.data_ptr<int64_t>()[i] = s.next();
    torchs.data_ptr<int64_t>()[i] = engine();
  }
  return {ours, torchs};
}

// The seed of the emulated blocks' shuffled order, and the emulated device's SM count.
void configure(int64_t block_seed, int64_t sm_count) {
  emu::block_seed = static_cast<uint64_t>(block_seed);
  emu::sm_count = static_cast<int>(sm_count);
}

}  // namespace

TORCH_LIBRARY(cutmix_ext_emulated, m) {
  m.def("configure(int block_seed, int sm_count) -> ()", &configure);
  m.def(
      "mix(bool cutmix, Tensor(a!) images, Tensor labels, Tensor perm, Tensor params, "
      "int? num_classes, float label_smoothing, bool table_in_memory, "
      "Tensor? unchecked_labels=None) -> Tensor",
      &mix);
  m.def("elem(Tensor(a!) images, Tensor? labels, Tensor perm, Tensor boxes, Tensor lam, "
        "Tensor mode, float fill, int? num_classes, float label_smoothing, "
        "bool table_in_memory) -> Tensor",
        &elem);
  m.def("gather(bool cutmix, Tensor x, Tensor perm, Tensor params, bool transpose, "
        "bool table_in_memory) -> Tensor",
        &gather);
  m.def("mix_drawn(bool cutmix, Tensor(a!) images, Tensor labels, int? num_classes, "
        "float label_smoothing, float alpha, bool per_sample, int pairing, int seed, int offset, "
        "bool captured, int intragraph) -> (Tensor, Tensor, Tensor, Tensor)",
        &mix_drawn);
  m.def("detection_boxes(Tensor boxes, Tensor idx, Tensor perm, Tensor? patch, Tensor lam, "
        "int height, int width, float min_visibility) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
        &detection_boxes);
  m.def("philox_words(int seed, int subsequence, int offset, int count) -> (Tensor, Tensor)",
        &philox_words);
}
