// The in-place kernels for batches past the small tile (more than kMaxSmallBatch samples), with
// the per-sample table in device memory or none.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_mix_large(MixOp op, const MixArgs& m, cudaStream_t stream) {
  LaunchArgs<0> a;
  a.m = m;
  return launch_tile<LargeTile>(op, a, stream);
}

}  // namespace cutmix_ext
