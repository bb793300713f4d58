// The out-of-place form (ops `cutmix` / `mixup`, and every backward): its kernels and launch.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_gather(const GatherArgs& m, const GatherRow* inline_rows, cudaStream_t stream) {
  if (inline_rows != nullptr) {
    if (m.n <= kSmallInlineRows) return launch_gather_inline<kSmallInlineRows>(m, inline_rows, stream);
    if (m.n <= kGatherInlineRows) return launch_gather_inline<kGatherInlineRows>(m, inline_rows, stream);
    return cudaErrorInvalidValue;
  }
  GatherLaunch<0> a;
  a.m = m;
  return launch_gather_any(a, stream);
}

}  // namespace cutmix_ext
