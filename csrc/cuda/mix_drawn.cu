// sampling="device": the in-place kernels that draw their parameters themselves.
#include "kernels.cuh"

namespace cutmix_ext {

cudaError_t launch_mix_drawn(bool cutmix, const MixArgs& m, const DeviceDraw& d,
                             cudaStream_t stream) {
  if (m.n > kMaxDrawnBatch) return cudaErrorInvalidValue;
  LaunchArgs<-1> a;
  a.m = m;
  a.d = d;
  return launch_tile<SmallTile>(cutmix ? kOpCutMix : kOpMixUp, a, stream);
}

}  // namespace cutmix_ext
