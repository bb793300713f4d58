// The CUDA kernels, as templates: one launch patches (CutMix), blends (MixUp) or does either per
// sample (the general op) in place and writes the targets; a second kernel, further down, is the
// out-of-place form and the backward. The .cu files beside this one each instantiate one family
// of them (nvcc then builds them in parallel); mix_kernel.cu chooses among them.
//
// In place, sample i must read its partner's pixels before the partner's own patch overwrites
// them. A block therefore owns a set of positions (row, chunk) across the whole batch: each
// thread loads everything its samples' new chunks depend on (the partner's chunk; the sample's
// own where it blends or a box edge cuts the chunk), computes them, the block meets at a
// barrier, and only then does anyone store. No other block touches those positions, so no
// batch-sized scratch buffer is needed and every byte of the patch is read once and written once.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "access.cuh"
#include "launch.h"

namespace cutmix_ext {
namespace {

// The shape of an in-place block: kThreads threads, each computing up to kPer new chunks of
// kVecBytes, which wait for the barrier in shared memory (kThreads * kPer chunks a block; in
// registers they would leave too few for the loads), so one launch mixes at most
// kThreads * kPer samples. A thread loads kGroup samples' chunks at once. kMinBlocks goes to
// __launch_bounds__: ptxas then keeps the registers low enough for that many resident blocks
// per SM, which keeps loads in flight while a block waits at its barrier
// (tests/test_occupancy.py reads the built kernels' resources and checks it).
template <int THREADS, int PER, int MIN_BLOCKS, int VEC_BYTES, int GROUP>
struct Tile {
  static constexpr int kThreads = THREADS, kPer = PER, kMinBlocks = MIN_BLOCKS, kGroup = GROUP;
  static constexpr int kVecBytes = VEC_BYTES;
  static constexpr int64_t kMaxBatch = int64_t{THREADS} * PER;
  // Rows off VEC_BYTES boundaries, or not a whole number of chunks long, move in wide chunks
  // with a head and a tail (Span); the large tile's registers leave no room for that code, and
  // it takes such rows element by element.
  static constexpr bool kHeads = VEC_BYTES == 16;
};
// The batches people train with on one GPU: 8 chunks of 16 bytes a thread (32 KiB a block).
using SmallTile = Tile<256, 8, 3, 16, 4>;
// Larger batches: 16 chunks of 8 bytes a thread (64 KiB a block).
using LargeTile = Tile<512, 16, 2, 8, 2>;
static_assert(SmallTile::kMaxBatch == kMaxSmallBatch && LargeTile::kMaxBatch == kMaxBatch);
static_assert(kMaxDrawnBatch <= SmallTile::kMaxBatch);

constexpr int kTargetsPerThread = 8;

struct Geometry {
  int64_t rows_h;     // rows per `a`: row r is (a, y) = (r / rows_h, y0 + r % rows_h)
  int64_t y0;
  int64_t chunk_lo;   // first chunk of a row that is visited
  int64_t chunks;     // chunks visited per row
  int64_t positions;  // rows * chunks; a block owns P consecutive ones per item
  int64_t patch_items, items;  // items [patch_items, items) write the targets
  int32_t S, P, R;    // sample slots per position, positions per item, samples per slot
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
// CAP = -1: every block draws the table into shared memory (sampling="device").
template <>
struct LaunchArgs<-1> {
  MixArgs m;
  Geometry g;
  DeviceDraw d;
};

// Past kSmallInlineRows rows a warp spans several samples (kernel: slot = thread / P), and
// parameter-space loads at diverging indices are served one address at a time; such tables are
// copied to shared memory (behind the block's chunks) once per resident block, whose grid is then
// one wave looping over the items.
constexpr bool staged(int cap) { return cap > kSmallInlineRows; }
// A 16-bit edge word a thread, rounded to keep the staged rows behind it 16-byte aligned.
template <class TILE>
constexpr int64_t kEdgeBytes = (int64_t{TILE::kThreads} * 2 + 15) / 16 * 16;

template <int CAP>
__device__ const Sample* stage_rows(const LaunchArgs<CAP>& a, Sample* rows) {
  for (int64_t i = threadIdx.x; i < a.m.n; i += blockDim.x) rows[i] = a.rows[i];
  __syncthreads();
  return rows;
}

template <int CAP>
__device__ __forceinline__ const Sample* table_of(const LaunchArgs<CAP>& a) {
  if constexpr (CAP > 0) {
    return a.rows;
  } else {
    return a.m.table;
  }
}

// Every block draws the whole table itself: the draws are a pure function of (seed, offset, i),
// so all blocks agree without talking to each other, and the call stays one launch. The grid
// of this form is one wave of resident blocks looping over the items (see launch), so the
// table is drawn once per resident block, not once per item; the threads share the rows, and
// with one lam and box for the batch each thread draws it once. Block 0 reports the draw.
// The table lives in static shared memory declared here, not in the kernel template: the
// emulation poisons static shared arrays before every block, and the host compiler can place
// only those of functions that are not templates where it finds them (tests/emulation).
__device__ const Sample* draw_table(const LaunchArgs<-1>& a, bool cutmix) {
  __shared__ Sample rows[kMaxDrawnBatch];
  const DeviceDraw& d = a.d;
  const MixArgs& m = a.m;
  const uint64_t seed = d.captured ? static_cast<uint64_t>(load<int64_t>(d.seed_ptr)) : d.seed;
  const uint64_t offset =
      (d.captured ? static_cast<uint64_t>(load<int64_t>(d.offset_ptr)) + d.offset_intragraph
                  : d.offset) / 4;
  const U4 keys = feistel_keys(seed, offset);
  const int64_t first = threadIdx.x;
  for (int64_t i = first; i < m.n; i += blockDim.x) {
    Sample& row = rows[i];
    if (d.per_sample || i == first) {
      draw_row(d.alpha, m.h, m.w, seed, offset, d.per_sample ? static_cast<uint64_t>(i) : 0u,
               cutmix, &row);
    } else {
      row = rows[first];
    }
    row.src = static_cast<int32_t>(drawn_partner(d, keys, i, m.n));
  }
  __syncthreads();
  if (blockIdx.x == 0) {
    for (int64_t i = first; i < m.n; i += blockDim.x) {
      const Sample& row = rows[i];
      store(d.perm_out + i, row.src);
      store(d.lam_out + i, row.lam);
      if (cutmix) {
        store(d.boxes_out + 4 * i, row.x1);
        store(d.boxes_out + 4 * i + 1, row.y1);
        store(d.boxes_out + 4 * i + 2, row.x2);
        store(d.boxes_out + 4 * i + 3, row.y2);
      }
    }
  }
  return rows;
}

template <int ES> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = unsigned long long; };
template <> struct Bits<16> { using type = uint4; };

// What one thread moves per sample and position: BYTES = the tile's vector width when every
// sample's rows sit at the same offset from it (the rows themselves need not be aligned: see
// Span), else one element (BYTES = ES).
template <int ES, int BYTES>
struct Chunk {
  static constexpr int kBytes = BYTES;
  static constexpr int kElems = BYTES / ES;
  using Storage = typename Bits<BYTES>::type;
  using Elem = typename Bits<ES>::type;
};

// Hides x's value from the optimizer, so that what is derived from x is derived again where
// it is used rather than kept in registers.
template <class T>
__device__ __forceinline__ void opaque(T& x) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) {
    asm volatile("" : "+r"(x));
  } else {
    asm volatile("" : "+l"(x));
  }
#else
  asm volatile("" : "+r"(x));
#endif
}

template <class V>
__device__ __forceinline__ V* dynamic_shared() {
#ifdef CUTMIX_EXT_EMULATE
  return reinterpret_cast<V*>(emulated_dynamic_shared());
#else
  extern __shared__ uint4 dynamic_smem[];
  return reinterpret_cast<V*>(dynamic_smem);
#endif
}

// The bytes [a, b) of a 4-byte word, as a mask (a, b may fall outside [0, 4]).
__device__ __forceinline__ uint32_t byte_mask(int32_t a, int32_t b) {
  auto below = [](int32_t x) -> uint32_t {
    return x <= 0 ? 0u : x >= 4 ? 0xffffffffu : (1u << (8 * x)) - 1u;
  };
  return below(b) & ~below(a);
}

// A chunk is an aligned BYTES-wide word of memory; a row whose start is not aligned to BYTES
// begins with a partial chunk (its head) and may end with one (its tail), whose bytes outside
// the row belong to the rows beside it, another position, perhaps another block. Those chunks
// move only their bytes [first, last), widest words first; every other chunk moves whole. The
// row's offset from alignment (its phase) is the same for every sample, so a sample, its
// partner and the output all split the row the same way.
struct Span {
  int32_t lo;           // the chunk's first byte, relative to the row's start (< 0 for a head)
  int32_t first, last;  // the chunk's bytes that lie in the row, relative to lo
};
// Chunk `c` of a row of `row_bytes` that starts `phase` bytes past a `bytes` boundary.
CUTMIX_HD Span span_of(int64_t c, int32_t phase, int64_t row_bytes, int32_t bytes) {
  const auto lo = static_cast<int32_t>(c * bytes - phase);
  const auto end = static_cast<int32_t>(row_bytes - lo < bytes ? row_bytes - lo : bytes);
  return Span{lo, lo < 0 ? -lo : 0, end};
}
CUTMIX_HD int32_t phase_of(const void* row, int32_t bytes) {
  return static_cast<int32_t>(reinterpret_cast<uintptr_t>(row) % static_cast<uint32_t>(bytes));
}

template <class C>
__device__ __forceinline__ bool whole(const Span& s) {
  return C::kElems == 1 || (s.first == 0 && s.last == C::kBytes);
}

// A row's head or tail goes through the thread's own 16 bytes of shared memory (`scratch`),
// element by element in a loop: few registers and little code, for chunks that are few. The
// chunk's bytes [first, last) at p (aligned to C::kBytes), the rest 0:
template <class C>
__device__ __forceinline__ typename C::Storage load_part(const char* p, const Span& s,
                                                         typename C::Storage* scratch) {
  // Written as elements and read as a whole: through memcpy, which may alias anything (a store
  // as one type and a load as another would let the compiler reorder them).
  using E = typename C::Elem;
  using V = typename C::Storage;
  const V zero{};
  char* bytes = reinterpret_cast<char*>(scratch);
  memcpy(bytes, &zero, sizeof(V));
#pragma unroll 1
  for (int b = s.first; b < s.last; b += static_cast<int>(sizeof(E))) {
    const E e = load<E>(p + b);
    memcpy(bytes + b, &e, sizeof(E));
  }
  V v;
  memcpy(&v, bytes, sizeof(V));
  return v;
}
// and the chunk's bytes [first, last) of *scratch stored at p.
template <class C>
__device__ __forceinline__ void store_part(char* p, const typename C::Storage* scratch, const Span& s) {
  using E = typename C::Elem;
  const char* bytes = reinterpret_cast<const char*>(scratch);
#pragma unroll 1
  for (int b = s.first; b < s.last; b += static_cast<int>(sizeof(E))) {
    E e;
    memcpy(&e, bytes + b, sizeof(E));
    store(reinterpret_cast<E*>(p + b), e);
  }
}

// The whole chunk at p, or (kWhole false) its bytes in the row, through scratch.
template <class C, bool kWhole>
__device__ __forceinline__ typename C::Storage load_chunk(const char* p, const Span& s,
                                                          typename C::Storage* scratch) {
  if constexpr (kWhole) {
    return load<typename C::Storage>(p);
  } else {
    return load_part<C>(p, s, scratch);
  }
}

// `inside` where the chunk's bytes lie in the box's byte columns [bl, bh) of the row,
// `outside` elsewhere. Box edges fall on element boundaries, so this works on bits.
template <class C>
__device__ __forceinline__ typename C::Storage merge(const typename C::Storage& inside,
                                                     const typename C::Storage& outside,
                                                     int32_t lo, int32_t bl, int32_t bh) {
  using S = typename C::Storage;
  S out = outside;
  if constexpr (sizeof(S) >= 4) {
    constexpr int kWords = sizeof(S) / 4;
    const uint32_t* in = reinterpret_cast<const uint32_t*>(&inside);
    uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
    for (int w = 0; w < kWords; ++w) {
      const uint32_t mask = byte_mask(bl - lo - 4 * w, bh - lo - 4 * w);
      o[w] = (in[w] & mask) | (o[w] & ~mask);
    }
  } else {  // one element of 1 or 2 bytes: it is inside or not
    if (lo < bl || lo >= bh) return outside;
    out = inside;
  }
  return out;
}

// Out-of-range class indices are found without a host sync: every block checks them all, the
// loads spread over its threads and issued with the data loads; the data barrier
// (__syncthreads_or) carries the verdict. If one is bad the block writes no pixel and only NaN
// targets, so the images stay untouched.
template <class TILE>
__device__ __forceinline__ bool labels_bad(const MixArgs& m) {
  if (!is_index_label(m)) return false;
  bool bad = false;
#pragma unroll
  for (int j = 0; j < TILE::kPer; ++j) {
    const int64_t i = threadIdx.x + int64_t{j} * TILE::kThreads;
    if (i < m.n) {
      const int64_t y = label_index(m, i);
      bad = bad || y < 0 || y >= m.num_classes;
    }
  }
  return bad;
}

template <class TILE>
__device__ void write_targets(const MixArgs& m, const Sample* table, int64_t item, bool cutmix) {
  const int64_t K = m.num_classes, total = m.n * K;
  const int64_t begin = item * TILE::kThreads * kTargetsPerThread + threadIdx.x;
  float v[kTargetsPerThread];
#pragma unroll
  for (int t = 0; t < kTargetsPerThread; ++t) {
    const int64_t e = begin + int64_t{t} * TILE::kThreads;
    if (e < total) {
      const int64_t i = e / K, k = e % K;
      const int64_t j = partner(m, table, i);
      v[t] = target_value(sample_lam(m, table, i, cutmix),
                          smoothed(label_prob(m, i, k), m.smoothing, K),
                          smoothed(label_prob(m, j, k), m.smoothing, K));
    }
  }
  const bool bad = __syncthreads_or(labels_bad<TILE>(m));
#pragma unroll
  for (int t = 0; t < kTargetsPerThread; ++t) {
    const int64_t e = begin + int64_t{t} * TILE::kThreads;
    if (e < total) store(m.targets + e, bad ? NAN : v[t]);
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

template <typename T, class C>
__device__ __forceinline__ typename C::Storage blend_chunk(const typename C::Storage& own,
                                                           const typename C::Storage& other,
                                                           double lam) {
  typename C::Storage out;
  const T* x = reinterpret_cast<const T*>(&own);
  const T* z = reinterpret_cast<const T*>(&other);
#pragma unroll
  for (int e = 0; e < C::kElems; ++e) reinterpret_cast<T*>(&out)[e] = blend_one(x[e], z[e], lam, 1.0 - lam);
  return out;
}

// Where sample i's box meets the chunk at image row y and byte lo of the row: [bl, bh) in
// bytes of the row, or an empty range. Offsets inside a row are 32-bit (the host refuses rows
// of 2 GiB or more): the kernels' registers are that much fewer.
struct Cut {
  int32_t bl, bh;
  bool touches, whole;
};
template <class C>
__device__ __forceinline__ Cut cut_of(const MixArgs& m, int32_t x1, int32_t y1, int32_t x2,
                                      int32_t y2, int32_t y, int32_t lo) {
  const int32_t pix = static_cast<int32_t>(m.q) * static_cast<int32_t>(sizeof(typename C::Elem));
  Cut c{x1 * pix, x2 * pix, false, false};
  c.touches = y >= y1 && y < y2 && c.bl < c.bh && lo < c.bh && lo + C::kBytes > c.bl;
  c.whole = c.bl <= lo && lo + C::kBytes <= c.bh;
  return c;
}

// Each op says whether sample i changes at the thread's position (`touches`), loads what its
// new chunk depends on (`load`: the partner's chunk, the sample's own where needed) and
// computes it from that (`combine`). The kernel issues the loads of all its samples before it
// combines any, so that they are in flight together, and stores after the barrier.

template <class V>
struct Loaded {
  V own, src;
};

// CutMix: sample i takes its partner's chunk where its box covers it.
template <int ES, int BYTES>
struct CutMixOp {
  static constexpr bool kCutmix = true;
  static constexpr int kElemSize = ES;
  static constexpr int kMaxChunk = 16;
  using C = Chunk<ES, BYTES>;
  using V = typename C::Storage;

  const MixArgs& m;
  const Sample* table;
  int32_t y;
  Span s;

  __device__ Cut cut(int64_t i) const {
    const Box b = box_of(m, table, i);
    return cut_of<C>(m, b.x1, b.y1, b.x2, b.y2, y, s.lo);
  }
  __device__ bool touches(int64_t i) const { return cut(i).touches; }
  template <bool kWhole>
  __device__ Loaded<V> load(const char* own, const char* src, int64_t i, V* scratch) const {
    Loaded<V> in;
    in.src = load_chunk<C, kWhole>(src, s, scratch);
    if (!cut(i).whole) in.own = load_chunk<C, kWhole>(own, s, scratch);
    return in;
  }
  __device__ V combine(const Loaded<V>& in, int64_t i) const {
    const Cut c = cut(i);
    return c.whole ? in.src : merge<C>(in.src, in.own, s.lo, c.bl, c.bh);
  }
};

// MixUp: every sample blends its own chunk with its partner's.
template <typename T, int BYTES>
struct MixUpOp {
  static constexpr bool kCutmix = false;
  static constexpr int kElemSize = sizeof(T);
  static constexpr int kMaxChunk = 16;
  using C = Chunk<sizeof(T), BYTES>;
  using V = typename C::Storage;

  const MixArgs& m;
  const Sample* table;
  int32_t y;
  Span s;

  // A sample paired with itself is left exactly as it is, not blended with itself.
  __device__ bool touches(int64_t i) const { return partner(m, table, i) != i; }
  template <bool kWhole>
  __device__ Loaded<V> load(const char* own, const char* src, int64_t, V* scratch) const {
    Loaded<V> in;
    in.own = load_chunk<C, kWhole>(own, s, scratch);
    in.src = load_chunk<C, kWhole>(src, s, scratch);
    return in;
  }
  __device__ V combine(const Loaded<V>& in, int64_t i) const {
    return blend_chunk<T, C>(in.own, in.src, table == nullptr ? m.lam : table[i].lam);
  }
};

// The general op: sample i pastes, blends or fills where its box covers the chunk, by its own
// mode. Integer masks run as the float type of their width: they only paste and fill, which
// move bits.
template <typename T, int BYTES>
struct ElemOp {
  static constexpr bool kCutmix = false;  // the targets take lam from the table
  static constexpr int kElemSize = sizeof(T);
  // Its three modes on two 8-byte elements at once need more registers than the small tile's
  // bounds leave (ptxas spills): one element a chunk there.
  static constexpr int kMaxChunk = sizeof(T) == 8 ? 8 : 16;
  using C = Chunk<sizeof(T), BYTES>;
  using V = typename C::Storage;

  const MixArgs& m;
  const Sample* table;
  int32_t y;
  Span s;

  __device__ Cut cut(int64_t i) const {
    const Sample& r = table[i];
    return cut_of<C>(m, r.x1, r.y1, r.x2, r.y2, y, s.lo);
  }
  // Paired with itself, only a fill changes a sample.
  __device__ bool touches(int64_t i) const {
    return cut(i).touches && (table[i].mode == kModeFill || partner(m, table, i) != i);
  }
  template <bool kWhole>
  __device__ Loaded<V> load(const char* own, const char* src, int64_t i, V* scratch) const {
    const int32_t mode = table[i].mode;
    Loaded<V> in;
    if (!cut(i).whole || mode == kModeBlend) in.own = load_chunk<C, kWhole>(own, s, scratch);
    if (mode != kModeFill) in.src = load_chunk<C, kWhole>(src, s, scratch);
    return in;
  }
  __device__ V combine(const Loaded<V>& in, int64_t i) const {
    const Sample& r = table[i];
    V out;
    if (r.mode == kModeBlend) {
      out = blend_chunk<T, C>(in.own, in.src, r.lam);
    } else if (r.mode == kModeFill) {
      const auto f = static_cast<typename C::Elem>(m.fill_bits);
#pragma unroll
      for (int e = 0; e < C::kElems; ++e) reinterpret_cast<typename C::Elem*>(&out)[e] = f;
    } else {
      out = in.src;
    }
    const Cut c = cut(i);
    return c.whole ? out : merge<C>(out, in.own, s.lo, c.bl, c.bh);
  }
};

// Where position `at` lies: the start of its row in sample 0, the image row, the chunk's bytes.
struct Place {
  char* row;
  int32_t y;
  Span span;
};
template <class C>
__device__ __forceinline__ Place place_of(const MixArgs& m, const Geometry& g, int64_t at) {
  constexpr int ES = C::kBytes / C::kElems;
  const int64_t row = at / g.chunks;
  const auto y = static_cast<int32_t>(g.y0 + row % g.rows_h);
  char* start = static_cast<char*>(m.images) + ((row / g.rows_h) * m.stride_a + y * m.stride_h) * ES;
  return Place{start, y, span_of(g.chunk_lo + at % g.chunks, phase_of(start, C::kBytes), m.w * m.q * ES, C::kBytes)};
}

// Items [0, g.patch_items) each own g.P consecutive positions across the whole batch: every
// thread computes the new chunks of its samples, the block meets at the barrier, then stores.
// The remaining items write the targets. A block takes items blockIdx.x, + gridDim.x, ...: one
// each, except where a block first fills its table (sampling="device", staged rows), whose grid
// is one wave of resident blocks.
template <class Op, class TILE, int CAP>
__global__ void __launch_bounds__(TILE::kThreads, TILE::kMinBlocks)
    mix_kernel(const __grid_constant__ LaunchArgs<CAP> a) {
  using V = typename Op::V;
  constexpr int ES = Op::kElemSize;
  const MixArgs& m = a.m;
  const Geometry& g = a.g;
  V* stash = dynamic_shared<V>();  // [kPer][kThreads]: each thread reads back only its own
  // Behind the stash: each thread's head or tail bytes, held across the barrier here rather than
  // in registers; then the staged table.
  uint16_t* edges = reinterpret_cast<uint16_t*>(stash + TILE::kThreads * TILE::kPer);
  const Sample* table;
  if constexpr (CAP < 0) {
    table = draw_table(a, Op::kCutmix);
  } else if constexpr (staged(CAP)) {
    table = stage_rows(a, reinterpret_cast<Sample*>(edges + kEdgeBytes<TILE> / 2));
  } else {
    table = table_of(a);
  }
  const int pos = static_cast<int>(threadIdx.x) % g.P, thread_slot = static_cast<int>(threadIdx.x) / g.P;
  const int64_t sample_bytes = m.stride_n * ES, slot_step = g.S * sample_bytes;
  const int32_t n = static_cast<int32_t>(m.n);

  for (int64_t item = blockIdx.x; item < g.items; item += gridDim.x) {
    if (item >= g.patch_items) {
      write_targets<TILE>(m, table, item - g.patch_items, Op::kCutmix);
      continue;
    }
    // The samples' table rows depend on the slot only: without this the compiler keeps them
    // all in registers across the loop (which runs once but for sampling="device").
    int slot = thread_slot;
    opaque(slot);
    const int64_t at = item * g.P + pos;
    const Place place = place_of<typename Op::C>(m, g, at);
    const bool active = slot < g.S && at < g.positions && place.span.first < place.span.last;
    const bool partial = TILE::kHeads && !whole<typename Op::C>(place.span);
    char* base = place.row + place.span.lo;
    char* own = base + slot * sample_bytes;  // sample slot + k * S lies k * slot_step further
    const Op op{m, table, place.y, place.span};

    uint32_t live = 0;
    bool bad = false;
    constexpr int kGroup = TILE::kGroup;
#pragma unroll
    for (int k0 = 0; k0 < TILE::kPer; k0 += kGroup) {
      Loaded<V> in[kGroup];
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        const int k = k0 + j;
        const int32_t i = slot + k * g.S;
        if (active && k < g.R && i < n && op.touches(i)) {
          live |= 1u << k;
          const char* src = base + partner(m, table, i) * sample_bytes;
          // a row's head or tail: through the sample's entry of the stash, a loop, few registers
          in[j] = partial ? op.template load<false>(own + k * slot_step, src, i, &stash[k * TILE::kThreads + threadIdx.x])
                          : op.template load<true>(own + k * slot_step, src, i, nullptr);
        }
      }
      if (k0 == 0) bad = labels_bad<TILE>(m);  // their loads join the first group's
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        const int k = k0 + j;
        if ((live >> k) & 1u) stash[k * TILE::kThreads + threadIdx.x] = op.combine(in[j], slot + k * g.S);
      }
    }
    if (partial) edges[threadIdx.x] = static_cast<uint16_t>(place.span.first | place.span.last << 8);
    if (__syncthreads_or(bad)) continue;
    // Recomputed rather than remembered: kPer 64-bit addresses held across the barrier would
    // cost more registers than the launch bounds leave.
    opaque(own);
    if (!partial) {
#pragma unroll
      for (int k = 0; k < TILE::kPer; ++k) {
        if ((live >> k) & 1u) store(reinterpret_cast<V*>(own + k * slot_step), stash[k * TILE::kThreads + threadIdx.x]);
      }
    } else {  // a row's head or tail
      const uint32_t edge = edges[threadIdx.x];
      const Span span{0, static_cast<int32_t>(edge & 0xff), static_cast<int32_t>(edge >> 8)};
#pragma unroll
      for (int k = 0; k < TILE::kPer; ++k) {
        if ((live >> k) & 1u) {
          store_part<typename Op::C>(own + k * slot_step, &stash[k * TILE::kThreads + threadIdx.x], span);
        }
      }
    }
  }
}

inline bool same_phase(int64_t n, int64_t sample_bytes, int64_t bytes) {
  return n <= 1 || sample_bytes % bytes == 0;
}

// How far past a `bytes` boundary a row (a, y) of an image at `base` may start: 0 when every
// row starts on one, else up to the last element before the next (the kernels read each row's
// own phase). Strides in elements of `es` bytes.
inline int64_t max_phase(const void* base, int64_t es, int64_t a, int64_t stride_a, int64_t h,
                         int64_t stride_h, int64_t bytes) {
  auto ok = [&](int64_t size, int64_t stride) { return size <= 1 || (stride * es) % bytes == 0; };
  const bool aligned = reinterpret_cast<uintptr_t>(base) % bytes == 0 && ok(a, stride_a) && ok(h, stride_h);
  return aligned ? 0 : bytes - es;
}
inline int64_t max_phase(const MixArgs& m, int64_t bytes) {
  return max_phase(m.images, m.elem_size, m.a, m.stride_a, m.h, m.stride_h, bytes);
}

// Splits the batch over S slots of R samples (R <= kPer) and fills the block with P positions,
// so a warp reads P consecutive chunks of each of its samples. Positions run along the row and
// on into the next row, so a narrow box or image still fills the block.
template <class TILE>
Geometry geometry(const MixArgs& m, int64_t rows, int64_t rows_h, int64_t y0, int64_t chunk_lo,
                  int64_t chunk_hi) {
  Geometry g{};
  const int64_t r = std::min<int64_t>(TILE::kPer, std::max<int64_t>(m.n, 1));
  g.S = static_cast<int32_t>((m.n + r - 1) / r);
  g.R = static_cast<int32_t>((m.n + g.S - 1) / g.S);
  g.P = TILE::kThreads / std::max(g.S, 1);
  g.rows_h = std::max<int64_t>(rows_h, 1);
  g.y0 = y0;
  g.chunk_lo = chunk_lo;
  g.chunks = std::max<int64_t>(chunk_hi - chunk_lo, 0);
  g.positions = rows * g.chunks;
  g.patch_items = (g.positions + g.P - 1) / g.P;
  if (g.chunks == 0) g.chunks = 1;
  return g;
}

// Shared memory beyond 48 KiB a block, static and dynamic together, must be asked for: once
// per kernel and device (the drawn table is 32 KiB of static shared memory, the large tile's
// chunks 64 KiB).
constexpr int64_t kDefaultShared = 48 * 1024;
template <auto kKernel>
cudaError_t allow_shared(int64_t dynamic_bytes) {
#ifdef CUTMIX_EXT_EMULATE
  (void)dynamic_bytes;
  return cudaSuccess;
#else
  static std::atomic<bool> done[64];
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  if (device < 0 || device >= 64) return cudaErrorInvalidDevice;
  if (done[device].load(std::memory_order_acquire)) return cudaSuccess;
  status = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(dynamic_bytes));
  if (status == cudaSuccess) done[device].store(true, std::memory_order_release);
  return status;
#endif
}

// Blocks of one wave of `kernel`: what the device reports resident at once per SM, times its
// SMs; read once per device (after allow_shared, which the count depends on). The launch
// bounds promise kMinBlocks per SM on sm_90; other GPUs may hold fewer (sm_86, sm_89) or more.
template <auto kKernel>
int64_t resident_blocks(int threads, int64_t dynamic_bytes, int min_blocks) {
#ifdef CUTMIX_EXT_EMULATE
  (void)threads, (void)dynamic_bytes;
  return emulated_sm_count() * min_blocks;
#else
  static std::atomic<int64_t> wave[64];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return min_blocks;
  int64_t count = wave[device].load(std::memory_order_relaxed);
  if (count == 0) {
    int sms = 0, per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads,
                                                      static_cast<size_t>(dynamic_bytes)) != cudaSuccess) {
      (void)cudaGetLastError();  // not the launch's error: one block still does the whole call
      return min_blocks;
    }
    count = int64_t{std::max(sms, 1)} * std::max(per_sm, 1);
    wave[device].store(count, std::memory_order_relaxed);
  }
  return count;
#endif
}

template <class Op, class TILE, int CAP>
cudaError_t launch(LaunchArgs<CAP>& a, cudaStream_t stream) {
  constexpr auto kernel = mix_kernel<Op, TILE, CAP>;
  constexpr int64_t kSpan = int64_t{TILE::kThreads} * kTargetsPerThread;
  constexpr int64_t kShared = int64_t{TILE::kThreads} * TILE::kPer * sizeof(typename Op::V) +
                              kEdgeBytes<TILE> + (staged(CAP) ? CAP * int64_t{sizeof(Sample)} : 0);
  constexpr int64_t kStatic = CAP < 0 ? kMaxDrawnBatch * int64_t{sizeof(Sample)} : 0;
  a.g.items = a.g.patch_items + (a.m.n * a.m.num_classes + kSpan - 1) / kSpan;
  if (a.g.items == 0) return cudaSuccess;
  if constexpr (kShared + kStatic > kDefaultShared) {
    const cudaError_t allowed = allow_shared<kernel>(kShared);
    if (allowed != cudaSuccess) return allowed;
  }
  int64_t blocks = a.g.items;
  if constexpr (CAP < 0 || staged(CAP)) {
    blocks = std::min(blocks, resident_blocks<kernel>(TILE::kThreads, kShared, TILE::kMinBlocks));
  }
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
#ifdef CUTMIX_EXT_EMULATE  // tests/emulation runs the kernels on the CPU
  emulate_launch<kernel>(static_cast<unsigned>(blocks), TILE::kThreads, a, kShared);
  return cudaSuccess;
#else
  kernel<<<static_cast<unsigned>(blocks), TILE::kThreads, kShared, stream>>>(a);
  return cudaGetLastError();
#endif
}

// The chunk width: the tile's vector (at most what the op allows) when every sample's rows lie
// at the same phase of it (the sample stride a multiple of it), else one element.
template <class TILE, class Op>
constexpr int vector_bytes() {
  constexpr int kBytes = TILE::kVecBytes < Op::kMaxChunk ? TILE::kVecBytes : Op::kMaxChunk;
  return Op::kElemSize < kBytes ? kBytes : Op::kElemSize;
}
template <class TILE, class Op>
bool use_vector(const MixArgs& m) {
  constexpr int kBytes = vector_bytes<TILE, Op>();
  const int64_t row_bytes = m.w * m.q * m.elem_size;
  return Op::kElemSize < kBytes && same_phase(m.n, m.stride_n * m.elem_size, kBytes) &&
         (TILE::kHeads || (max_phase(m, kBytes) == 0 && row_bytes % kBytes == 0)) &&
         row_bytes <= INT32_MAX - kBytes;
}

// CutMix and the general op visit the union of the boxes, chunk by chunk (of `bytes`, elements
// of `es` bytes); MixUp every chunk of every row. (tests/emulation checks both for every N.)
// A row's chunk c covers its bytes [c * bytes - phase, ...), so the chunks that can meet the
// bytes [lo, hi) of some row run from lo / bytes (phase 0) to (hi + max_phase) / bytes.
template <class TILE>
Geometry boxed_geometry(const MixArgs& m, int64_t es, int64_t bytes) {
  const int64_t pix = m.q * es, slack = max_phase(m, bytes);
  return geometry<TILE>(m, m.a * (m.uy2 - m.uy1), m.uy2 - m.uy1, m.uy1, m.ux1 * pix / bytes,
                        (m.ux2 * pix + slack + bytes - 1) / bytes);
}
template <class TILE>
Geometry whole_geometry(const MixArgs& m, int64_t es, int64_t bytes) {
  return geometry<TILE>(m, m.a * m.h, m.h, 0, 0,
                        (m.w * m.q * es + max_phase(m, bytes) + bytes - 1) / bytes);
}

template <template <class, int> class Op, class T, class TILE, int CAP>
cudaError_t launch_boxed(LaunchArgs<CAP>& a, cudaStream_t stream) {
  constexpr int ES = sizeof(T), VB = vector_bytes<TILE, Op<T, ES>>();
  const MixArgs& m = a.m;
  const bool vec = use_vector<TILE, Op<T, ES>>(m);
  a.g = boxed_geometry<TILE>(m, ES, vec ? VB : ES);
  return vec ? launch<Op<T, VB>, TILE>(a, stream) : launch<Op<T, ES>, TILE>(a, stream);
}

template <typename T, int BYTES>
using CutMixOf = CutMixOp<sizeof(T), BYTES>;

template <typename T, class TILE, int CAP>
cudaError_t launch_mixup(LaunchArgs<CAP>& a, cudaStream_t stream) {
  constexpr int ES = sizeof(T), VB = vector_bytes<TILE, MixUpOp<T, ES>>();
  const MixArgs& m = a.m;
  const bool vec = use_vector<TILE, MixUpOp<T, ES>>(m);
  a.g = whole_geometry<TILE>(m, ES, vec ? VB : ES);
  return vec ? launch<MixUpOp<T, VB>, TILE>(a, stream) : launch<MixUpOp<T, ES>, TILE>(a, stream);
}

template <class TILE, int CAP>
cudaError_t launch_tile(MixOp op, LaunchArgs<CAP>& a, cudaStream_t stream) {
  const MixArgs& m = a.m;
  if (op == kOpCutMix) {  // moves bits: one kernel per element width
    switch (m.elem_size) {
      case 1: return launch_boxed<CutMixOf, uint8_t, TILE>(a, stream);
      case 2: return launch_boxed<CutMixOf, uint16_t, TILE>(a, stream);
      case 4: return launch_boxed<CutMixOf, uint32_t, TILE>(a, stream);
      default: return launch_boxed<CutMixOf, uint64_t, TILE>(a, stream);
    }
  }
  if (op == kOpElem) {
    if constexpr (CAP < 0) {
      return cudaErrorInvalidValue;  // sampling="device" draws CutMix or MixUp only
    } else {
      switch (m.scalar == kBits ? m.elem_size : -1) {
        case 1: return launch_boxed<ElemOp, uint8_t, TILE>(a, stream);
        case 2: return launch_boxed<ElemOp, __half, TILE>(a, stream);
        case 4: return launch_boxed<ElemOp, float, TILE>(a, stream);
        case 8: return launch_boxed<ElemOp, double, TILE>(a, stream);
        default: break;
      }
      switch (m.scalar) {
        case kU8: return launch_boxed<ElemOp, uint8_t, TILE>(a, stream);
        case kF16: return launch_boxed<ElemOp, __half, TILE>(a, stream);
        case kBF16: return launch_boxed<ElemOp, __nv_bfloat16, TILE>(a, stream);
        case kF32: return launch_boxed<ElemOp, float, TILE>(a, stream);
        default: return launch_boxed<ElemOp, double, TILE>(a, stream);
      }
    }
  }
  switch (m.scalar) {
    case kU8: return launch_mixup<uint8_t, TILE>(a, stream);
    case kF16: return launch_mixup<__half, TILE>(a, stream);
    case kBF16: return launch_mixup<__nv_bfloat16, TILE>(a, stream);
    case kF32: return launch_mixup<float, TILE>(a, stream);
    default: return launch_mixup<double, TILE>(a, stream);
  }
}

template <int CAP>
cudaError_t launch_inline(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream) {
  LaunchArgs<CAP> a;
  a.m = m;
  std::copy(rows, rows + m.n, a.rows);
  return launch_tile<SmallTile>(op, a, stream);
}

// ---- The out-of-place form (ops `cutmix` / `mixup`, and the backward of every form) ----
//
// A plain gather: each thread writes one chunk of the output from the same chunk of x[j] and of
// x[src], reading only the sources the chunk needs (CutMix reads one of them away from the box
// edges). Nothing is overwritten that another thread reads, so no barrier is needed.

constexpr int kGatherThreads = 512;

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

// The out-of-place kernel's chunk at p, whole or a row's head or tail, through the thread's
// 16 bytes of shared memory (declared outside the kernel template, as draw_table's table).
__device__ uint4* gather_scratch() {
  __shared__ uint4 scratch[kGatherThreads];
  return &scratch[threadIdx.x];
}
template <class C>
__device__ __forceinline__ typename C::Storage fetch(const char* p, const Span& s) {
  using V = typename C::Storage;
  return whole<C>(s) ? load<V>(p) : load_part<C>(p, s, reinterpret_cast<V*>(gather_scratch()));
}
template <class C>
__device__ __forceinline__ void put(char* p, const typename C::Storage& v, const Span& s) {
  using V = typename C::Storage;
  if (whole<C>(s)) {
    store(reinterpret_cast<V*>(p), v);
  } else {
    V* scratch = reinterpret_cast<V*>(gather_scratch());
    *scratch = v;
    store_part<C>(p, scratch, s);
  }
}

template <typename T, bool VEC, int CAP>
__global__ void __launch_bounds__(kGatherThreads) gather_kernel(const __grid_constant__ GatherLaunch<CAP> a) {
  using C = Chunk<sizeof(T), VEC ? 16 : sizeof(T)>;
  using V = typename C::Storage;
  constexpr int ES = sizeof(T);
  const GatherArgs& m = a.m;
  const int64_t idx = int64_t{blockIdx.x} * kGatherThreads + threadIdx.x;
  if (idx >= a.total) return;
  const int64_t chunk = idx % a.chunks_per_row, r = idx / a.chunks_per_row;
  const int64_t y = r % m.h, t = r / m.h, aa = t % m.a, j = t / m.a;
  const GatherRow& row = gather_row(a, j);
  // The output's rows and the input's lie at the same phase (gather_vector).
  char* dst = static_cast<char*>(m.out) + (j * m.out_stride_n + aa * m.out_stride_a + y * m.out_stride_h) * ES;
  const Span s = span_of(chunk, phase_of(dst, C::kBytes), m.w * m.q * ES, C::kBytes);
  if (s.first >= s.last) return;
  dst += s.lo;
  const int64_t lo = s.lo / ES;  // the chunk's first element in the row (< 0 in a head)
  const int64_t in_off = (aa * m.in_stride_a + y * m.in_stride_h) * ES + s.lo;
  const char* own = static_cast<const char*>(m.in) + j * m.in_stride_n * ES + in_off;
  const char* src = static_cast<const char*>(m.in) + row.src * m.in_stride_n * ES + in_off;

  V out_v, own_v, src_v;
  T* o = reinterpret_cast<T*>(&out_v);
  const T* x = reinterpret_cast<const T*>(&own_v);
  const T* z = reinterpret_cast<const T*>(&src_v);
  if (!m.cutmix) {
    own_v = fetch<C>(own, s);
    if (row.src == j) {  // paired with itself: a copy, not a blend with itself
      put<C>(dst, own_v, s);
      return;
    }
    src_v = fetch<C>(src, s);
#pragma unroll
    for (int e = 0; e < C::kElems; ++e) o[e] = blend_one(x[e], z[e], row.wa, row.wb);
    put<C>(dst, out_v, s);
    return;
  }
  // Element e lies in pixel column (lo + e) / q; self is dropped inside keep, x[src] taken inside take.
  const bool kr = box_has_row(row.keep, y), tr = box_has_row(row.take, y);
  const int64_t k1 = kr ? row.keep.x1 * m.q : 0, k2 = kr ? row.keep.x2 * m.q : 0;
  const int64_t t1 = tr ? row.take.x1 * m.q : 0, t2 = tr ? row.take.x2 * m.q : 0;
  const int64_t hi = lo + C::kElems;
  const bool any_self = lo < k1 || hi > k2, any_src = lo < t2 && hi > t1;
  if (any_self) own_v = fetch<C>(own, s);
  if (any_src) src_v = fetch<C>(src, s);
#pragma unroll
  for (int e = 0; e < C::kElems; ++e) {
    const int64_t el = lo + e;
    const bool self = el < k1 || el >= k2, in_take = el >= t1 && el < t2;
    o[e] = self && in_take ? blend_one(x[e], z[e], 1.0, 1.0)
           : self          ? x[e]
           : in_take       ? z[e]
                           : from_float<T>(0.0f);
  }
  put<C>(dst, out_v, s);
}

// 16-byte chunks when every row of the input and of the output lies at one phase of 16 bytes:
// the same for every sample (so x[j], x[src] and out[j] split a row alike), rows of any width.
inline bool gather_vector(const GatherArgs& m) {
  const int64_t es = m.elem_size;
  auto same = [&](int64_t size, int64_t in_stride, int64_t out_stride) {
    return size <= 1 || ((in_stride - out_stride) * es) % 16 == 0;
  };
  const auto in = reinterpret_cast<uintptr_t>(m.in), out = reinterpret_cast<uintptr_t>(m.out);
  return same_phase(m.n, m.in_stride_n * es, 16) && same_phase(m.n, m.out_stride_n * es, 16) &&
         (in - out) % 16 == 0 && same(m.a, m.in_stride_a, m.out_stride_a) &&
         same(m.h, m.in_stride_h, m.out_stride_h) && m.w * m.q * es <= INT32_MAX - 16;
}

template <typename T, int CAP>
cudaError_t launch_gather_as(GatherLaunch<CAP>& a, cudaStream_t stream) {
  const GatherArgs& m = a.m;
  const bool vec = gather_vector(m);
  const int64_t bytes = vec ? 16 : static_cast<int64_t>(sizeof(T));
  const int64_t slack = max_phase(m.out, m.elem_size, m.a, m.out_stride_a, m.h, m.out_stride_h, bytes);
  a.chunks_per_row = (m.w * m.q * m.elem_size + slack + bytes - 1) / bytes;
  a.total = m.n * m.a * m.h * a.chunks_per_row;
  const int64_t blocks = (a.total + kGatherThreads - 1) / kGatherThreads;
  if (blocks == 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
#ifdef CUTMIX_EXT_EMULATE
  if (vec) {
    emulate_launch<gather_kernel<T, true, CAP>>(static_cast<unsigned>(blocks), kGatherThreads, a);
  } else {
    emulate_launch<gather_kernel<T, false, CAP>>(static_cast<unsigned>(blocks), kGatherThreads, a);
  }
  return cudaSuccess;
#else
  auto kernel = vec ? gather_kernel<T, true, CAP> : gather_kernel<T, false, CAP>;
  kernel<<<static_cast<unsigned>(blocks), kGatherThreads, 0, stream>>>(a);
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

template <int CAP>
cudaError_t launch_gather_inline(const GatherArgs& m, const GatherRow* rows, cudaStream_t stream) {
  GatherLaunch<CAP> a;
  a.m = m;
  std::copy(rows, rows + m.n, a.rows);
  return launch_gather_any(a, stream);
}

}  // namespace

// The families, one file each: per-sample rows inline in the parameters (mix_rows64.cu,
// mix_rows256.cu, mix_rows960.cu), drawn in the kernel (mix_drawn.cu); the table in device memory or none,
// and the dispatch (mix_kernel.cu), for batches past the small tile (mix_large.cu); the
// out-of-place form (gather_kernel.cu).
cudaError_t launch_mix_rows64(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream);
// Batches past the small tile never travel inline (kInlineSamples < kMaxSmallBatch), so the
// large tile exists for the table in memory only (mix_large.cu).
cudaError_t launch_mix_large(MixOp op, const MixArgs& m, cudaStream_t stream);
cudaError_t launch_mix_rows256(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream);
cudaError_t launch_mix_rows960(MixOp op, const MixArgs& m, const Sample* rows, cudaStream_t stream);

}  // namespace cutmix_ext
