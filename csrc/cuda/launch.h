// The interface between the torch-facing CUDA file and the kernels: plain structs only.
#pragma once
#include <cuda_runtime_api.h>

#include "../detection.h"
#include "../mix.h"

namespace cutmix_ext {

// A block owns a set of positions across the whole batch and holds its samples' new values
// there across a barrier, so one launch mixes at most this many samples: up to kMaxSmallBatch
// with blocks of 256 threads and 16-byte chunks, beyond that with blocks of 512 threads and
// 8-byte chunks (kernels.cuh, Tile).
constexpr int64_t kMaxSmallBatch = 2048;
constexpr int64_t kMaxBatch = 8192;
// Per-sample rows that travel inside the kernel's parameters, so per-sample and random-pairing
// calls need no host-to-device copy: blocks of 2 KiB and 8 KiB for the batches people train
// with, whose launches then copy little, and up to kInlineSamples rows (32 bytes each) inside
// the 32 KiB parameter limit of sm_70+ with CUDA 12.1+.
constexpr int64_t kSmallInlineRows = 64;
constexpr int64_t kMidInlineRows = 256;
constexpr int64_t kInlineSamples = 960;

// One launch does the whole call: patch (or blend) in place and write the targets. `inline_rows`
// (n rows, n <= kInlineSamples) is copied into the kernel parameters; otherwise m.table is a
// device pointer or null (one box / lam for the batch and an arithmetic pairing).
cudaError_t launch_mix(MixOp op, const MixArgs& m, const Sample* inline_rows,
                       cudaStream_t stream);

// sampling="device": each resident block draws the n parameter rows into shared memory
// (32 bytes each) from d, so a call is limited to this many samples.
constexpr int64_t kMaxDrawnBatch = 1024;
// Writes d.perm_out, d.boxes_out and d.lam_out as well. m.table is unused and the union box
// must be the whole image: the host does not know the boxes.
cudaError_t launch_mix_drawn(bool cutmix, const MixArgs& m, const DeviceDraw& d,
                             cudaStream_t stream);

// The out-of-place form: one launch writes g.out. Rows travel inline up to this many samples
// (56 bytes each, inside the 32 KiB parameter limit; kSmallInlineRows of them in a small
// block), else m.table is a device pointer.
constexpr int64_t kGatherInlineRows = 512;
cudaError_t launch_gather(const GatherArgs& m, const GatherRow* inline_rows, cudaStream_t stream);

// detection_boxes: one launch. a.start[2n] is then the number of rows written, or minus the
// codes (kBadSample | kBadBox) of what was wrong, when nothing is written.
cudaError_t launch_detection_boxes(const BoxArgs& a, cudaStream_t stream);

// detection_choose: one launch. *a.status is then 0, or the codes of what was wrong (no patch
// written).
cudaError_t launch_detection_choose(const ChooseArgs& a, cudaStream_t stream);

}  // namespace cutmix_ext
