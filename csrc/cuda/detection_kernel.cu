// detection_boxes and detection_choose on the GPU (the rules are in ../detection.h). For
// detection_boxes one block counts the rows of each key, sums the counts up and places the rows,
// a chunk of boxes at a time in source order. A detection batch holds thousands of boxes, not
// millions, so one block is plenty, and each call is one launch with no scratch to clear
// beforehand. Its loads and stores of the scratch go
// through access.cuh like the other kernels'; those inside detection.h (shared with the CPU)
// do not, which a one-block kernel can afford: no other block could meet them.
#include <cuda_runtime.h>

#include <cstdint>

#include "access.cuh"
#include "launch.h"

namespace cutmix_ext {
namespace {

constexpr int kBoxThreads = 256;

__global__ void __launch_bounds__(kBoxThreads) detection_boxes_kernel(const BoxArgs a) {
  // The chunk's keys, own then pasted, -1 where a row is dropped; and a scan's partial sums.
  __shared__ int32_t keys[2 * kBoxThreads];
  __shared__ int32_t sums[kBoxThreads];
  __shared__ int32_t bad;
  const int t = static_cast<int>(threadIdx.x);
  if (t == 0) bad = 0;
  for (int64_t key = t; key <= 2 * a.n; key += kBoxThreads) store(a.start + key, 0);
  for (int64_t i = t; i < a.n; i += kBoxThreads) store(a.into + a.table[i].src, static_cast<int32_t>(i));
  __syncthreads();

  // start[key + 1] counts the rows of each key. (Atomics are the one way the emulation's tracer
  // lets blocks share a word they change; this kernel has one block, so nothing is shared.)
  for (int64_t k = t; k < a.m; k += kBoxThreads) {
    const int64_t s = a.idx[k];
    if (s < 0 || s >= a.n || !valid_box(a.boxes + 4 * k)) {
      atomicOr(&bad, s < 0 || s >= a.n ? kBadSample : kBadBox);
      continue;
    }
    const Fate f = box_fate(a, k, s);
    if (f.keep_own) atomicAdd(&a.start[2 * s + 1], 1);
    if (f.keep_pasted) atomicAdd(&a.start[2 * load<int32_t>(a.into + s) + 2], 1);
  }
  __syncthreads();
  if (bad != 0) {  // the host names the culprit, and nothing was written
    if (t == 0) store(a.start + 2 * a.n, -bad);
    return;
  }

  // Summed up, start[key] is the key's first row and start[2n] the total: each thread sums a
  // run of keys, the runs' sums are scanned in shared memory, each run is then written out.
  const int64_t len = 2 * a.n + 1, per = (len + kBoxThreads - 1) / kBoxThreads;
  const int64_t lo = t * per < len ? t * per : len, hi = lo + per < len ? lo + per : len;
  int32_t run = 0;
  for (int64_t k = lo; k < hi; ++k) run += load<int32_t>(a.start + k);
  sums[t] = run;
  __syncthreads();
  for (int d = 1; d < kBoxThreads; d *= 2) {
    const int32_t v = t >= d ? sums[t - d] : 0;
    __syncthreads();
    sums[t] += v;
    __syncthreads();
  }
  int32_t acc = sums[t] - run;
  for (int64_t k = lo; k < hi; ++k) {
    acc += load<int32_t>(a.start + k);
    store(a.start + k, acc);
  }
  __syncthreads();

  // Each row's place: its key's next row, plus the rows of the same key earlier in the chunk;
  // the last of them moves the key on. Own keys are even and pasted ones odd: never the same.
  for (int64_t base = 0; base < a.m; base += kBoxThreads) {
    const int64_t k = base + t;
    const int64_t chunk = a.m - base < kBoxThreads ? a.m - base : kBoxThreads;
    Fate f{};
    int64_t s = 0;
    int32_t ko = -1, kp = -1;
    if (k < a.m) {
      s = a.idx[k];
      f = box_fate(a, k, s);
      if (f.keep_own) ko = static_cast<int32_t>(2 * s);
      if (f.keep_pasted) kp = 2 * load<int32_t>(a.into + s) + 1;
    }
    keys[t] = ko;
    keys[kBoxThreads + t] = kp;
    __syncthreads();
    int32_t ro = 0, rp = 0;
    bool last_o = true, last_p = true;
    for (int u = 0; u < chunk; ++u) {
      const int32_t uo = keys[u], up = keys[kBoxThreads + u];
      if (u < t) {
        ro += uo == ko;
        rp += up == kp;
      } else if (u > t) {
        last_o = last_o && uo != ko;
        last_p = last_p && up != kp;
      }
    }
    const int32_t bo = ko >= 0 ? load<int32_t>(a.start + ko) : 0;
    const int32_t bp = kp >= 0 ? load<int32_t>(a.start + kp) : 0;
    __syncthreads();  // every row has read its key's start before the last one moves it
    if (ko >= 0) {
      put_row(a, bo + ro, k, s, true, f.own_box);
      if (last_o) store(a.start + ko, bo + ro + 1);
    }
    if (kp >= 0) {
      put_row(a, bp + rp, k, load<int32_t>(a.into + s), false, f.pasted_box);
      if (last_p) store(a.start + kp, bp + rp + 1);
    }
    __syncthreads();  // the chunk's keys and starts are done with
  }
}

// Marks every candidate a box meets (threads over the boxes), then picks each sample's patch
// (threads over the samples).
__global__ void __launch_bounds__(kBoxThreads) detection_choose_kernel(const ChooseArgs a) {
  __shared__ int32_t bad;
  const int t = static_cast<int>(threadIdx.x);
  if (t == 0) bad = 0;
  for (int64_t i = t; i < a.n * a.k; i += kBoxThreads) store(a.marks + i, 0);
  __syncthreads();
  for (int64_t q = t; q < a.m; q += kBoxThreads) {
    const int64_t s = a.idx[q];
    if (s < 0 || s >= a.n || !valid_box(a.boxes + 4 * q)) {
      atomicOr(&bad, s < 0 || s >= a.n ? kBadSample : kBadBox);
      continue;
    }
    const Marker m = marker(a, q, s);
    for (int64_t c = 0; c < a.k; ++c) {
      const Marks mk = box_marks(a, m, c);
      if (mk.own) atomicOr(a.marks + s * a.k + c, mk.own);
      if (mk.pasted) atomicOr(a.marks + m.t * a.k + c, mk.pasted);
    }
  }
  __syncthreads();
  if (t == 0) store(a.status, static_cast<int64_t>(bad));
  if (bad != 0) return;
  for (int64_t i = t; i < a.n; i += kBoxThreads) choose_patch(a, i, a.marks + i * a.k);
}

}  // namespace

cudaError_t launch_detection_choose(const ChooseArgs& a, cudaStream_t stream) {
#ifdef CUTMIX_EXT_EMULATE
  emulate_launch<detection_choose_kernel>(1, kBoxThreads, a);
  return cudaSuccess;
#else
  detection_choose_kernel<<<1, kBoxThreads, 0, stream>>>(a);
  return cudaGetLastError();
#endif
}

cudaError_t launch_detection_boxes(const BoxArgs& a, cudaStream_t stream) {
#ifdef CUTMIX_EXT_EMULATE
  emulate_launch<detection_boxes_kernel>(1, kBoxThreads, a);
  return cudaSuccess;
#else
  detection_boxes_kernel<<<1, kBoxThreads, 0, stream>>>(a);
  return cudaGetLastError();
#endif
}

}  // namespace cutmix_ext
