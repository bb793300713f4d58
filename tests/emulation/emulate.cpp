// The CUDA kernels, run on the CPU through cuda_shim.h, behind an op the tests compare with the
// CPU backend: cutmix_ext_emulated::mix (in place) and ::gather (the out-of-place form).
#include "cuda_shim.h"
// clang-format off
#include "../../csrc/cuda/mix_kernel.cu"
// clang-format on
#include <ATen/ATen.h>
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
  TORCH_CHECK(launch_mix(cutmix, p.args, inline_rows, nullptr) == cudaSuccess);
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

}  // namespace

TORCH_LIBRARY(cutmix_ext_emulated, m) {
  m.def(
      "mix(bool cutmix, Tensor(a!) images, Tensor labels, Tensor perm, Tensor params, "
      "int? num_classes, float label_smoothing, bool table_in_memory, "
      "Tensor? unchecked_labels=None) -> Tensor",
      &mix);
  m.def("gather(bool cutmix, Tensor x, Tensor perm, Tensor params, bool transpose, "
        "bool table_in_memory) -> Tensor",
        &gather);
}
