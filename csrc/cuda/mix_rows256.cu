// The in-place kernels with up to kMidInlineRows = 256 per-sample rows inline in their parameters.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_mix_rows256(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream) {
  return launch_inline<kMidInlineRows>(op, m, rows, stream);
}

}  // namespace cutmix_ext
