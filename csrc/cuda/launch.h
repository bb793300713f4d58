// The interface between the torch-facing CUDA file and the kernels: plain structs only.
#pragma once
#include <cuda_runtime_api.h>

#include "../mix.h"

namespace cutmix_ext {

// Threads of a block and partner values one thread holds across the block's barrier: a block
// owns a tile of positions across the whole batch, so one launch mixes at most this many samples.
constexpr int kThreads = 512;
constexpr int kMaxPerThread = 16;
constexpr int64_t kMaxBatch = int64_t{kThreads} * kMaxPerThread;
// Per-sample rows that travel inside the kernel's parameters (32 KiB limit on sm_70+ with
// CUDA 12.1+), so per-sample and random-pairing calls need no host-to-device copy either.
constexpr int64_t kInlineSamples = 960;

// One launch does the whole call: patch (or blend) in place and write the targets. `inline_rows`
// (n rows, n <= kInlineSamples) is copied into the kernel parameters; otherwise m.table is a
// device pointer or null (one box / lam for the batch and an arithmetic pairing).
cudaError_t launch_mix(MixOp op, const MixArgs& m, const Sample* inline_rows,
                       cudaStream_t stream);

// sampling="device": each block draws the n parameter rows into shared memory (32 bytes each)
// from d, so a call is limited to this many samples.
constexpr int64_t kMaxDrawnBatch = 1024;
// Writes d.perm_out, d.boxes_out and d.lam_out as well. m.table is unused and the union box
// must be the whole image: the host does not know the boxes.
cudaError_t launch_mix_drawn(bool cutmix, const MixArgs& m, const DeviceDraw& d,
                             cudaStream_t stream);

// The out-of-place form: one launch writes g.out. Rows travel inline up to this many samples
// (56 bytes each, inside the 32 KiB parameter limit), else m.table is a device pointer.
constexpr int64_t kGatherInlineRows = 512;
cudaError_t launch_gather(const GatherArgs& m, const GatherRow* inline_rows, cudaStream_t stream);

}  // namespace cutmix_ext
