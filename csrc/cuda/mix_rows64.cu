// The in-place kernels with up to kSmallInlineRows = 64 per-sample rows inline in their parameters.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_mix_rows64(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream) {
  return launch_inline<kSmallInlineRows>(op, m, rows, stream);
}

}  // namespace cutmix_ext
