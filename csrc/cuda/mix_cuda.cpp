// CUDA backend, torch-facing half: checks the call (shared with the CPU backend), allocates the
// targets and launches the single kernel on the current stream. The kernels live in
// mix_kernel.cu, which sees none of torch.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstring>

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

at::Tensor mix_cuda(bool cutmix, const at::Tensor& images, const at::Tensor& labels,
                    const at::Tensor& perm, const at::Tensor& params,
                    std::optional<int64_t> num_classes, double label_smoothing) {
  Plan p = make_plan(cutmix, images, labels, perm, params, num_classes, label_smoothing);
  TORCH_CHECK_VALUE(images.is_cuda(), "images: expected a CUDA tensor, got ", images.device());
  TORCH_CHECK_VALUE(p.args.n <= kMaxBatch, "images: the CUDA kernels mix at most ", kMaxBatch,
                    " samples per call, got N = ", p.args.n);
  const c10::cuda::CUDAGuard guard(images.device());
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
  C10_CUDA_CHECK(launch_mix(cutmix, p.args, inline_rows, c10::cuda::getCurrentCUDAStream()));
  return targets;
}

at::Tensor gather_cuda(bool cutmix, const at::Tensor& x, const at::Tensor& perm,
                       const at::Tensor& params, bool transpose) {
  GatherPlan g = make_gather_plan(cutmix, transpose, x, perm, params);
  TORCH_CHECK_VALUE(x.is_cuda(), "x: expected a CUDA tensor, got ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
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
  m.impl("cutmix", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& boxes,
                      bool transpose) { return gather_cuda(true, x, perm, boxes, transpose); });
  m.impl("mixup", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& lam,
                     bool transpose) { return gather_cuda(false, x, perm, lam, transpose); });
}

}  // namespace cutmix_ext
