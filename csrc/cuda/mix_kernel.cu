// CUDA kernels: one launch patches (CutMix) or blends (MixUp) in place and writes the targets;
// a second kernel, further down, is the out-of-place form and the backward.
//
// In place, sample i must read its partner's pixels before the partner's own patch overwrites
// them. A block therefore owns a tile of positions across the whole batch: each thread loads the
// partner values of its samples, the block meets at a barrier, and only then does anyone store.
// No other block touches those positions, so no batch-sized scratch buffer is needed and every
// byte of the patch is read once and written once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "launch.h"

namespace cutmix_ext {
namespace {

constexpr int kTargetsPerThread = 8;

struct Geometry {
  int64_t rows_h;         // rows per `a`; a block's row is (a, y) = (row / rows_h, y0 + row % rows_h)
  int64_t y0;
  int64_t chunk_lo, chunk_hi;  // chunks of a row that are visited
  int64_t tiles_per_row;
  int64_t patch_blocks;   // blocks after these write the targets
  int32_t S, P, R;        // sample slots per position, positions per block, samples per slot
};

template <int CAP>
struct LaunchArgs {
  MixArgs m;
  Geometry g;
  Sample rows[CAP];
};
template <>
struct LaunchArgs<0> {
  MixArgs m;
  Geometry g;
};
// CAP = -1: the table is drawn by every block into shared memory (sampling="device").
template <>
struct LaunchArgs<-1> {
  MixArgs m;
  Geometry g;
  DeviceDraw d;
};

template <int CAP>
__device__ __forceinline__ const Sample* table_of(const LaunchArgs<CAP>& a) {
  if constexpr (CAP > 0) {
    return a.rows;
  } else {
    return a.m.table;
  }
}

// Every block draws the whole table itself: the draws are a pure function of (seed, offset, i),
// so all blocks agree without talking to each other, and the call stays one launch. The first
// target block also reports what was drawn.
__device__ void draw_table(const LaunchArgs<-1>& a, Sample* rows, bool cutmix, bool reporter) {
  const DeviceDraw& d = a.d;
  const uint64_t seed = d.captured ? static_cast<uint64_t>(*d.seed_ptr) : d.seed;
  const uint64_t offset =
      d.captured ? static_cast<uint64_t>(*d.offset_ptr) + d.offset_intragraph : d.offset;
  for (int64_t i = threadIdx.x; i < a.m.n; i += blockDim.x) {
    const Sample row = draw_row(d, seed, offset / 4, a.m, i, cutmix);
    rows[i] = row;
    if (reporter) {
      d.perm_out[i] = row.src;
      d.lam_out[i] = row.lam;
      if (cutmix) {
        d.boxes_out[4 * i] = row.x1;
        d.boxes_out[4 * i + 1] = row.y1;
        d.boxes_out[4 * i + 2] = row.x2;
        d.boxes_out[4 * i + 3] = row.y2;
      }
    }
  }
  __syncthreads();
}

template <int ES> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = unsigned long long; };

// What one thread moves per sample: 16 bytes when every row start is 16-byte aligned, else one
// element.
template <int ES, bool VEC>
struct Chunk {
  static constexpr int kBytes = VEC ? 16 : ES;
  static constexpr int kElems = kBytes / ES;
  using Storage = std::conditional_t<VEC, uint4, typename Bits<ES>::type>;
};

// Out-of-range class indices are found without a host sync: every block checks them all and,
// if one is bad, writes no pixel and only NaN targets, so the images stay untouched.
__device__ bool labels_valid(const MixArgs& m) {
  bool bad = false;
  if (is_index_label(m)) {
    for (int64_t i = threadIdx.x; i < m.n; i += blockDim.x) {
      const int64_t y = label_index(m, i);
      bad = bad || y < 0 || y >= m.num_classes;
    }
  }
  return !__syncthreads_or(bad);
}

__device__ void write_targets(const MixArgs& m, const Sample* table, int64_t block, bool cutmix,
                              bool valid) {
  const int64_t K = m.num_classes, total = m.n * K;
  const int64_t begin = block * kThreads * kTargetsPerThread;
  const int64_t stop = begin + int64_t{kThreads} * kTargetsPerThread;
  const int64_t end = stop < total ? stop : total;
  for (int64_t e = begin + threadIdx.x; e < end; e += kThreads) {
    if (!valid) {
      m.targets[e] = NAN;
      continue;
    }
    const int64_t i = e / K, k = e % K;
    const int64_t j = partner(m, table, i);
    m.targets[e] = target_value(sample_lam(m, table, i, cutmix),
                                smoothed(label_prob(m, i, k), m.smoothing, K),
                                smoothed(label_prob(m, j, k), m.smoothing, K));
  }
}

template <typename T> __device__ __forceinline__ float to_float(T v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ uint8_t from_float(float v) {
  return static_cast<uint8_t>(fminf(255.0f, fmaxf(0.0f, rintf(v))));
}
template <> __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float(float v) {
  return __float2bfloat16_rn(v);
}

// wa * x + wb * y in float32 (float64 for double), rounded once, as on the CPU.
template <typename T>
__device__ __forceinline__ T blend_one(T x, T y, double wa, double wb) {
  if constexpr (std::is_same_v<T, double>) {
    return dblend(x, y, wa, wb);
  } else {
    return from_float<T>(fblend(to_float(x), to_float(y), static_cast<float>(wa),
                                static_cast<float>(wb)));
  }
}

// CutMix at one (row, chunk) position: sample i takes its partner's chunk where its box covers it.
template <int ES, bool VEC>
struct CutMixOp {
  static constexpr bool kCutmix = true;
  static constexpr int kElemSize = ES;
  using C = Chunk<ES, VEC>;
  using E = typename Bits<ES>::type;

  const MixArgs& m;
  const Sample* table;
  int64_t y, lo;  // the row's image y and the chunk's first byte in the row

  __device__ bool touches(int64_t i) const {
    const Box b = box_of(m, table, i);
    const int64_t pix = m.q * ES;
    return y >= b.y1 && y < b.y2 && b.x1 < b.x2 && lo < b.x2 * pix && lo + C::kBytes > b.x1 * pix;
  }
  __device__ bool reads(int64_t) const { return true; }

  __device__ void store(char* dst, const typename C::Storage& v, int64_t i) const {
    const Box b = box_of(m, table, i);
    const int64_t bl = b.x1 * m.q * ES, bh = b.x2 * m.q * ES;
    if (bl <= lo && lo + C::kBytes <= bh) {
      *reinterpret_cast<typename C::Storage*>(dst) = v;
      return;
    }
    const E* src = reinterpret_cast<const E*>(&v);  // a chunk cut by the box edge: only its inside
#pragma unroll
    for (int e = 0; e < C::kElems; ++e) {
      const int64_t byte = lo + int64_t{e} * ES;
      if (byte >= bl && byte < bh) reinterpret_cast<E*>(dst)[e] = src[e];
    }
  }
};

// MixUp at one position: every sample blends its own chunk with its partner's.
template <typename T, bool VEC>
struct MixUpOp {
  static constexpr bool kCutmix = false;
  static constexpr int kElemSize = sizeof(T);
  using C = Chunk<sizeof(T), VEC>;

  const MixArgs& m;
  const Sample* table;
  int64_t y, lo;

  __device__ bool touches(int64_t) const { return true; }
  __device__ bool reads(int64_t) const { return true; }

  __device__ void store(char* dst, const typename C::Storage& v, int64_t i) const {
    const double lam = table == nullptr ? m.lam : table[i].lam;
    typename C::Storage own = *reinterpret_cast<const typename C::Storage*>(dst);
    T* x = reinterpret_cast<T*>(&own);
    const T* partner_values = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int e = 0; e < C::kElems; ++e) x[e] = blend_one(x[e], partner_values[e], lam, 1.0 - lam);
    *reinterpret_cast<typename C::Storage*>(dst) = own;
  }
};

// The general op at one position: sample i pastes, blends or fills where its box covers the
// chunk, by its own mode. Integer masks run as the float type of their width: they only paste
// and fill, which move bits.
template <typename T, bool VEC>
struct ElemOp {
  static constexpr bool kCutmix = false;  // the targets take lam from the table
  static constexpr int kElemSize = sizeof(T);
  using C = Chunk<sizeof(T), VEC>;
  using E = typename Bits<sizeof(T)>::type;

  const MixArgs& m;
  const Sample* table;
  int64_t y, lo;

  __device__ bool touches(int64_t i) const {
    const Sample& s = table[i];
    const int64_t pix = m.q * sizeof(T);
    return y >= s.y1 && y < s.y2 && s.x1 < s.x2 && lo < s.x2 * pix && lo + C::kBytes > s.x1 * pix;
  }
  __device__ bool reads(int64_t i) const { return table[i].mode != kModeFill; }

  __device__ void store(char* dst, const typename C::Storage& v, int64_t i) const {
    const Sample& s = table[i];
    const int64_t bl = s.x1 * m.q * sizeof(T), bh = s.x2 * m.q * sizeof(T);
    typename C::Storage out;
    if (s.mode == kModeBlend) {
      out = *reinterpret_cast<const typename C::Storage*>(dst);
      T* x = reinterpret_cast<T*>(&out);
      const T* z = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (int e = 0; e < C::kElems; ++e) x[e] = blend_one(x[e], z[e], s.lam, 1.0 - s.lam);
    } else if (s.mode == kModeFill) {
      const E f = static_cast<E>(m.fill_bits);
#pragma unroll
      for (int e = 0; e < C::kElems; ++e) reinterpret_cast<E*>(&out)[e] = f;
    } else {
      out = v;
    }
    if (bl <= lo && lo + C::kBytes <= bh) {
      *reinterpret_cast<typename C::Storage*>(dst) = out;
      return;
    }
    const E* src = reinterpret_cast<const E*>(&out);  // a chunk cut by the box edge: only its inside
#pragma unroll
    for (int e = 0; e < C::kElems; ++e) {
      const int64_t byte = lo + int64_t{e} * sizeof(T);
      if (byte >= bl && byte < bh) reinterpret_cast<E*>(dst)[e] = src[e];
    }
  }
};

// The first g.patch_blocks blocks each own g.P chunks of one row across the whole batch: every
// thread loads the partner chunks of its samples, the block meets at the barrier, then stores.
// The remaining blocks write the targets.
template <class Op, int CAP>
__global__ void __launch_bounds__(kThreads) mix_kernel(const __grid_constant__ LaunchArgs<CAP> a) {
  using V = typename Op::C::Storage;
  constexpr int ES = Op::kElemSize;
  const MixArgs& m = a.m;
  const Geometry& g = a.g;
  const Sample* table;
  if constexpr (CAP < 0) {
    __shared__ Sample drawn[kMaxDrawnBatch];
    draw_table(a, drawn, Op::kCutmix, blockIdx.x == g.patch_blocks);
    table = drawn;
  } else {
    table = table_of(a);
  }
  const bool valid = labels_valid(m);
  if (blockIdx.x >= g.patch_blocks) {
    write_targets(m, table, blockIdx.x - g.patch_blocks, Op::kCutmix, valid);
    return;
  }
  if (!valid) return;

  const int64_t row = blockIdx.x / g.tiles_per_row, tile = blockIdx.x % g.tiles_per_row;
  const int pos = threadIdx.x % g.P, slot = threadIdx.x / g.P;
  const int64_t chunk = g.chunk_lo + tile * g.P + pos;
  const bool active = slot < g.S && chunk < g.chunk_hi;
  const int64_t y = g.y0 + row % g.rows_h, lo = chunk * Op::C::kBytes;
  char* base = static_cast<char*>(m.images) + ((row / g.rows_h) * m.stride_a + y * m.stride_h) * ES + lo;
  const Op op{m, table, y, lo};

  V v[kMaxPerThread];
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int64_t i = slot + int64_t{k} * g.S;
    if (active && k < g.R && i < m.n && op.touches(i) && op.reads(i)) {
      v[k] = *reinterpret_cast<const V*>(base + partner(m, table, i) * m.stride_n * ES);
    }
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int64_t i = slot + int64_t{k} * g.S;
    if (active && k < g.R && i < m.n && op.touches(i)) op.store(base + i * m.stride_n * ES, v[k], i);
  }
}

bool aligned16(const MixArgs& m, int64_t row_elems) {
  const int64_t es = m.elem_size;
  auto ok = [&](int64_t size, int64_t stride) { return size <= 1 || (stride * es) % 16 == 0; };
  return reinterpret_cast<uintptr_t>(m.images) % 16 == 0 && ok(m.n, m.stride_n) &&
         ok(m.a, m.stride_a) && ok(m.h, m.stride_h) && (row_elems * es) % 16 == 0;
}

// Splits the batch over S slots of R samples (R <= kMaxPerThread) and fills the block with P
// positions, so a warp reads P consecutive chunks of one sample.
Geometry geometry(const MixArgs& m, int64_t rows, int64_t rows_h, int64_t y0, int64_t chunk_lo,
                  int64_t chunk_hi) {
  Geometry g{};
  const int64_t r = std::min<int64_t>(kMaxPerThread, std::max<int64_t>(m.n, 1));
  g.S = static_cast<int32_t>((m.n + r - 1) / r);
  g.R = static_cast<int32_t>((m.n + g.S - 1) / g.S);
  g.P = kThreads / g.S;
  g.rows_h = std::max<int64_t>(rows_h, 1);
  g.y0 = y0;
  g.chunk_lo = chunk_lo;
  g.chunk_hi = chunk_hi;
  g.tiles_per_row = (chunk_hi - chunk_lo + g.P - 1) / g.P;
  g.patch_blocks = chunk_hi > chunk_lo ? rows * g.tiles_per_row : 0;
  if (g.tiles_per_row == 0) g.tiles_per_row = 1;
  return g;
}

template <int CAP, class Kernel>
cudaError_t launch(Kernel kernel, LaunchArgs<CAP>& a, cudaStream_t stream) {
  const int64_t targets = a.m.n * a.m.num_classes;
  const int64_t target_blocks =
      (targets + int64_t{kThreads} * kTargetsPerThread - 1) / (int64_t{kThreads} * kTargetsPerThread);
  const int64_t blocks = a.g.patch_blocks + target_blocks;
  if (blocks == 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
#ifdef CUTMIX_EXT_EMULATE  // tests/emulation runs the kernels on the CPU
  emulate_launch(kernel, static_cast<unsigned>(blocks), kThreads, a);
  return cudaSuccess;
#else
  kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  return cudaGetLastError();
#endif
}

template <int CAP, int ES>
cudaError_t launch_cutmix(LaunchArgs<CAP>& a, cudaStream_t stream) {
  const MixArgs& m = a.m;
  const int64_t row_elems = m.w * m.q;
  const bool vec = aligned16(m, row_elems);
  const int64_t bytes = vec ? 16 : ES, pix = m.q * ES;
  a.g = geometry(m, m.a * (m.uy2 - m.uy1), m.uy2 - m.uy1, m.uy1, m.ux1 * pix / bytes,
                 (m.ux2 * pix + bytes - 1) / bytes);
  return vec ? launch(mix_kernel<CutMixOp<ES, true>, CAP>, a, stream)
             : launch(mix_kernel<CutMixOp<ES, false>, CAP>, a, stream);
}

template <int CAP, typename T>
cudaError_t launch_mixup(LaunchArgs<CAP>& a, cudaStream_t stream) {
  const MixArgs& m = a.m;
  const int64_t row_elems = m.w * m.q;
  const bool vec = aligned16(m, row_elems);
  const int64_t bytes = vec ? 16 : sizeof(T);
  a.g = geometry(m, m.a * m.h, m.h, 0, 0, row_elems * sizeof(T) / bytes);
  return vec ? launch(mix_kernel<MixUpOp<T, true>, CAP>, a, stream)
             : launch(mix_kernel<MixUpOp<T, false>, CAP>, a, stream);
}

template <int CAP, typename T>
cudaError_t launch_elem(LaunchArgs<CAP>& a, cudaStream_t stream) {
  const MixArgs& m = a.m;
  const int64_t row_elems = m.w * m.q;
  const bool vec = aligned16(m, row_elems);
  const int64_t bytes = vec ? 16 : sizeof(T), pix = m.q * sizeof(T);
  a.g = geometry(m, m.a * (m.uy2 - m.uy1), m.uy2 - m.uy1, m.uy1, m.ux1 * pix / bytes,
                 (m.ux2 * pix + bytes - 1) / bytes);
  return vec ? launch(mix_kernel<ElemOp<T, true>, CAP>, a, stream)
             : launch(mix_kernel<ElemOp<T, false>, CAP>, a, stream);
}

template <int CAP>
cudaError_t launch_any(MixOp op, LaunchArgs<CAP>& a, cudaStream_t stream) {
  if (op == kOpCutMix) {
    switch (a.m.elem_size) {
      case 1: return launch_cutmix<CAP, 1>(a, stream);
      case 2: return launch_cutmix<CAP, 2>(a, stream);
      case 4: return launch_cutmix<CAP, 4>(a, stream);
      default: return launch_cutmix<CAP, 8>(a, stream);
    }
  }
  if (op == kOpElem) {
    if constexpr (CAP < 0) {
      return cudaErrorInvalidValue;  // sampling="device" draws CutMix or MixUp only
    } else {
      switch (a.m.scalar == kBits ? a.m.elem_size : -1) {
        case 1: return launch_elem<CAP, uint8_t>(a, stream);
        case 2: return launch_elem<CAP, __half>(a, stream);
        case 4: return launch_elem<CAP, float>(a, stream);
        case 8: return launch_elem<CAP, double>(a, stream);
        default: break;
      }
      switch (a.m.scalar) {
        case kU8: return launch_elem<CAP, uint8_t>(a, stream);
        case kF16: return launch_elem<CAP, __half>(a, stream);
        case kBF16: return launch_elem<CAP, __nv_bfloat16>(a, stream);
        case kF32: return launch_elem<CAP, float>(a, stream);
        default: return launch_elem<CAP, double>(a, stream);
      }
    }
  }
  switch (a.m.scalar) {
    case kU8: return launch_mixup<CAP, uint8_t>(a, stream);
    case kF16: return launch_mixup<CAP, __half>(a, stream);
    case kBF16: return launch_mixup<CAP, __nv_bfloat16>(a, stream);
    case kF32: return launch_mixup<CAP, float>(a, stream);
    default: return launch_mixup<CAP, double>(a, stream);
  }
}

// ---- The out-of-place form (ops `cutmix` / `mixup`, and the backward of every form) ----
//
// A plain gather: each thread writes one chunk of the output from the same chunk of x[j] and of
// x[src], reading only the sources the chunk needs (CutMix reads one of them away from the box
// edges). Nothing is overwritten that another thread reads, so no barrier is needed.

template <int CAP>
struct GatherLaunch {
  GatherArgs m;
  int64_t chunks_per_row, total;
  GatherRow rows[CAP];
};
template <>
struct GatherLaunch<0> {
  GatherArgs m;
  int64_t chunks_per_row, total;
};

template <int CAP>
__device__ __forceinline__ const GatherRow& gather_row(const GatherLaunch<CAP>& a, int64_t j) {
  if constexpr (CAP > 0) {
    return a.rows[j];
  } else {
    return a.m.table[j];
  }
}

template <typename T, bool VEC, int CAP>
__global__ void __launch_bounds__(kThreads) gather_kernel(const __grid_constant__ GatherLaunch<CAP> a) {
  using C = Chunk<sizeof(T), VEC>;
  using V = typename C::Storage;
  const GatherArgs& m = a.m;
  const int64_t idx = int64_t{blockIdx.x} * kThreads + threadIdx.x;
  if (idx >= a.total) return;
  const int64_t chunk = idx % a.chunks_per_row, r = idx / a.chunks_per_row;
  const int64_t y = r % m.h, t = r / m.h, aa = t % m.a, j = t / m.a;
  const GatherRow& row = gather_row(a, j);
  const int64_t lo = chunk * C::kElems;  // first element of the chunk in the row
  const int64_t in_off = aa * m.in_stride_a + y * m.in_stride_h + lo;
  const T* own = static_cast<const T*>(m.in) + j * m.in_stride_n + in_off;
  const T* src = static_cast<const T*>(m.in) + row.src * m.in_stride_n + in_off;
  T* dst = static_cast<T*>(m.out) + j * m.out_stride_n + aa * m.out_stride_a + y * m.out_stride_h + lo;

  V out_v, own_v, src_v;
  T* o = reinterpret_cast<T*>(&out_v);
  const T* x = reinterpret_cast<const T*>(&own_v);
  const T* z = reinterpret_cast<const T*>(&src_v);
  if (!m.cutmix) {
    own_v = *reinterpret_cast<const V*>(own);
    src_v = *reinterpret_cast<const V*>(src);
#pragma unroll
    for (int e = 0; e < C::kElems; ++e) o[e] = blend_one(x[e], z[e], row.wa, row.wb);
    *reinterpret_cast<V*>(dst) = out_v;
    return;
  }
  // Element e lies in pixel column (lo + e) / q; self is dropped inside keep, x[src] taken inside take.
  const bool kr = box_has_row(row.keep, y), tr = box_has_row(row.take, y);
  const int64_t k1 = kr ? row.keep.x1 * m.q : 0, k2 = kr ? row.keep.x2 * m.q : 0;
  const int64_t t1 = tr ? row.take.x1 * m.q : 0, t2 = tr ? row.take.x2 * m.q : 0;
  const int64_t hi = lo + C::kElems;
  const bool any_self = lo < k1 || hi > k2, any_src = lo < t2 && hi > t1;
  if (any_self) own_v = *reinterpret_cast<const V*>(own);
  if (any_src) src_v = *reinterpret_cast<const V*>(src);
#pragma unroll
  for (int e = 0; e < C::kElems; ++e) {
    const int64_t el = lo + e;
    const bool self = el < k1 || el >= k2, in_take = el >= t1 && el < t2;
    o[e] = self && in_take ? blend_one(x[e], z[e], 1.0, 1.0)
           : self          ? x[e]
           : in_take       ? z[e]
                           : from_float<T>(0.0f);
  }
  *reinterpret_cast<V*>(dst) = out_v;
}

bool gather_aligned16(const GatherArgs& m) {
  const int64_t es = m.elem_size;
  auto ok = [&](int64_t size, int64_t stride) { return size <= 1 || (stride * es) % 16 == 0; };
  return reinterpret_cast<uintptr_t>(m.in) % 16 == 0 && reinterpret_cast<uintptr_t>(m.out) % 16 == 0 &&
         ok(m.n, m.in_stride_n) && ok(m.a, m.in_stride_a) && ok(m.h, m.in_stride_h) &&
         ok(m.n, m.out_stride_n) && ok(m.a, m.out_stride_a) && ok(m.h, m.out_stride_h) &&
         (m.w * m.q * es) % 16 == 0;
}

template <typename T, int CAP>
cudaError_t launch_gather_as(GatherLaunch<CAP>& a, cudaStream_t stream) {
  const GatherArgs& m = a.m;
  const bool vec = gather_aligned16(m);
  const int64_t elems = vec ? 16 / static_cast<int64_t>(sizeof(T)) : 1;
  a.chunks_per_row = m.w * m.q / elems;
  a.total = m.n * m.a * m.h * a.chunks_per_row;
  const int64_t blocks = (a.total + kThreads - 1) / kThreads;
  if (blocks == 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  auto kernel = vec ? gather_kernel<T, true, CAP> : gather_kernel<T, false, CAP>;
#ifdef CUTMIX_EXT_EMULATE
  emulate_launch(kernel, static_cast<unsigned>(blocks), kThreads, a);
  return cudaSuccess;
#else
  kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  return cudaGetLastError();
#endif
}

template <int CAP>
cudaError_t launch_gather_any(GatherLaunch<CAP>& a, cudaStream_t stream) {
  switch (a.m.scalar) {
    case kU8: return launch_gather_as<uint8_t>(a, stream);
    case kF16: return launch_gather_as<__half>(a, stream);
    case kBF16: return launch_gather_as<__nv_bfloat16>(a, stream);
    case kF32: return launch_gather_as<float>(a, stream);
    default: return launch_gather_as<double>(a, stream);
  }
}

}  // namespace

cudaError_t launch_gather(const GatherArgs& m, const GatherRow* inline_rows, cudaStream_t stream) {
  if (inline_rows != nullptr) {
    if (m.n > kGatherInlineRows) return cudaErrorInvalidValue;
    GatherLaunch<kGatherInlineRows> a;
    a.m = m;
    std::copy(inline_rows, inline_rows + m.n, a.rows);
    return launch_gather_any(a, stream);
  }
  GatherLaunch<0> a;
  a.m = m;
  return launch_gather_any(a, stream);
}

cudaError_t launch_mix_drawn(bool cutmix, const MixArgs& m, const DeviceDraw& d,
                             cudaStream_t stream) {
  if (m.n > kMaxDrawnBatch) return cudaErrorInvalidValue;
  LaunchArgs<-1> a;
  a.m = m;
  a.d = d;
  return launch_any(cutmix ? kOpCutMix : kOpMixUp, a, stream);
}

cudaError_t launch_mix(MixOp op, const MixArgs& m, const Sample* inline_rows,
                       cudaStream_t stream) {
  if (inline_rows != nullptr) {
    if (m.n > kInlineSamples) return cudaErrorInvalidValue;
    LaunchArgs<kInlineSamples> a;
    a.m = m;
    std::copy(inline_rows, inline_rows + m.n, a.rows);
    return launch_any(op, a, stream);
  }
  LaunchArgs<0> a;
  a.m = m;
  return launch_any(op, a, stream);
}

}  // namespace cutmix_ext
