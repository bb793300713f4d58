// The in-place kernels that read the per-sample table from device memory (or need none: one
// box or lam and an arithmetic pairing), and the choice among the families.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_mix(MixOp op, const MixArgs& m, const Sample* inline_rows,
                       cudaStream_t stream) {
  if (inline_rows != nullptr) {
    if (m.n <= kSmallInlineRows) return launch_mix_rows64(op, m, inline_rows, stream);
    if (m.n <= kMidInlineRows) return launch_mix_rows256(op, m, inline_rows, stream);
    if (m.n <= kInlineSamples) return launch_mix_rows960(op, m, inline_rows, stream);
    return cudaErrorInvalidValue;
  }
  if (m.n > SmallTile::kMaxBatch) return launch_mix_large(op, m, stream);
  LaunchArgs<0> a;
  a.m = m;
  return launch_tile<SmallTile>(op, a, stream);
}

}  // namespace cutmix_ext
