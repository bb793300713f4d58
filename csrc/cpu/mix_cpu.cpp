// CPU backend: in-place CutMix / MixUp with at::parallel_for and no batch-sized temporary.
//
// In place, sample i must read its partner's pixels before the partner's own patch overwrites
// them. Each pixel position is independent, so for a block of rows the samples are visited
// cycle by cycle of the partner permutation: c0, c1 = src(c0), c2 = src(c1), ... Then c_j takes
// from c_{j+1}, which is still original, and only c0 needs saving, in a buffer of one row block.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "../mix.h"
#include "../plan.h"
#include "blend_x86.h"

namespace cutmix_ext {
namespace {

// Bytes of one sample's rows moved per step of the cycle walk: enough to amortize the walk, small
// enough that the saved rows and the step's destination stay in L1/L2.
constexpr int64_t kBlockBytes = 32 << 10;
constexpr int64_t kMaxRowBlock = 256;
// Bytes per MixUp chunk: the partner chunk read at one step is the destination of the next, so
// it should still be in cache then.
constexpr int64_t kChunkBytes = 16384;
// Work below this many bytes runs on the calling thread.
constexpr int64_t kParallelBytes = 1 << 16;

struct Cycles {
  std::vector<int64_t> order;  // samples, cycle after cycle
  std::vector<int64_t> end;    // exclusive end of each cycle in `order`
};

Cycles cycles_of(const Plan& p) {
  const MixArgs& m = p.args;
  Cycles c;
  c.order.reserve(m.n);
  std::vector<char> done(m.n, 0);
  for (int64_t s = 0; s < m.n; ++s) {
    for (int64_t i = s; !done[i]; i = partner(m, p.table.data(), i)) {
      done[i] = 1;
      c.order.push_back(i);
    }
    if (c.order.size() > (c.end.empty() ? 0 : static_cast<size_t>(c.end.back()))) {
      c.end.push_back(static_cast<int64_t>(c.order.size()));
    }
  }
  return c;
}

// Scratch for one thread's saved rows: left uninitialised, since every element is written
// before it is read (zeroing it would cost as much as a small batch's whole mix).
template <typename T>
std::unique_ptr<T[]> scratch(int64_t count) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(count, 1))]);
}

int64_t grain_for(int64_t bytes_per_item) {
  return std::max<int64_t>(1, kParallelBytes / std::max<int64_t>(1, bytes_per_item));
}

// A block of rows: row k starts at base + off[k] and has image row index y[k].
struct Rows {
  char* base;
  const int64_t* off;
};

// The first and the last sizeof(W) bytes of [src, src + len), sizeof(W) <= len <= 2 sizeof(W):
// all of them, in two moves.
template <typename W>
inline void copy_ends(char* dst, const char* src, int64_t len) {
  W head, tail;
  std::memcpy(&head, src, sizeof(W));
  std::memcpy(&tail, src + len - sizeof(W), sizeof(W));
  std::memcpy(dst, &head, sizeof(W));
  std::memcpy(dst + len - sizeof(W), &tail, sizeof(W));
}

// Short row segments (a uint8 image row, a feature-map row) are copied inline: a memcpy call
// per segment costs as much as the copy itself. Source and destination never overlap.
inline void copy_bytes(char* dst, const char* src, int64_t len) {
#ifdef CUTMIX_EXT_X86
  if (len >= 16 && len <= 512) {
    for (int64_t e = 0; e + 16 < len; e += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + e),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + e)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + len - 16),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + len - 16)));
    return;
  }
#endif
  // Shorter ones (a feature map's rows) as two overlapping words of 8 or 4 bytes.
  if (len >= 8 && len < 16) {
    copy_ends<uint64_t>(dst, src, len);
    return;
  }
  if (len >= 4 && len < 8) {
    copy_ends<uint32_t>(dst, src, len);
    return;
  }
  if (len < 4) {
    for (int64_t e = 0; e < len; ++e) dst[e] = src[e];
    return;
  }
  std::memcpy(dst, src, len);
}

// A box's rows are strided runs in memory (a row of the patch, a gap, the next row), which the
// hardware prefetcher does not follow well: copying a batch from DRAM ran at about half the
// bandwidth of a flat copy until each step fetched its source this many rows ahead.
constexpr int64_t kPrefetchRows = 8;

inline void prefetch_bytes(const char* p, int64_t len) {
  for (int64_t e = 0; e < len; e += 64) __builtin_prefetch(p + e);
  __builtin_prefetch(p + len - 1);
}

// Copies box b's columns in the block's rows that b covers: dst <- src.
void copy_box(const Box& b, int64_t pix, int64_t rows, const int64_t* y, Rows dst, Rows src) {
  const int64_t col = b.x1 * pix, len = (b.x2 - b.x1) * pix;
  if (len == 0) return;
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t ahead = k + kPrefetchRows;
    if (ahead < rows && y[ahead] >= b.y1 && y[ahead] < b.y2) {
      prefetch_bytes(src.base + (src.off[ahead] + col), len);
    }
    if (y[k] >= b.y1 && y[k] < b.y2) {
      copy_bytes(dst.base + (dst.off[k] + col), src.base + (src.off[k] + col), len);
    }
  }
}

void cutmix_cpu(const Plan& p, const Cycles& cyc) {
  const MixArgs& m = p.args;
  const Sample* table = p.table.data();
  const int64_t rows_h = m.uy2 - m.uy1;
  const int64_t rows = m.a * rows_h;  // rows (a, y) crossing the union of the boxes
  if (rows == 0) return;
  const int64_t es = m.elem_size, pix = m.q * es;
  const int64_t span = (m.ux2 - m.ux1) * pix;
  char* base = static_cast<char*>(m.images);
  auto sample = [&](int64_t i, const int64_t* off) { return Rows{base + i * m.stride_n * es, off}; };

  const int64_t block = std::clamp<int64_t>(kBlockBytes / span, 1, kMaxRowBlock);
  at::parallel_for(0, rows, grain_for(m.n * span), [&](int64_t r0, int64_t r1) {
    const auto saved = scratch<char>(std::min(block, r1 - r0) * span);
    int64_t y[kMaxRowBlock], image_off[kMaxRowBlock], saved_off[kMaxRowBlock];
    for (int64_t rb = r0; rb < r1; rb += block) {
      const int64_t nr = std::min(block, r1 - rb);
      for (int64_t k = 0; k < nr; ++k) {
        const int64_t a = (rb + k) / rows_h;
        y[k] = m.uy1 + (rb + k) % rows_h;
        image_off[k] = (a * m.stride_a + y[k] * m.stride_h) * es;
        saved_off[k] = k * span - m.ux1 * pix;
      }
      const Rows keep{saved.get(), saved_off};
      int64_t begin = 0;
      for (const int64_t end : cyc.end) {
        const int64_t* c = cyc.order.data() + begin;
        const int64_t len = end - begin;
        begin = end;
        if (len == 1) continue;  // a sample paired with itself keeps its pixels
        const Box last = box_of(m, table, c[len - 1]);
        copy_box(last, pix, nr, y, keep, sample(c[0], image_off));
        for (int64_t j = 0; j + 1 < len; ++j) {
          copy_box(box_of(m, table, c[j]), pix, nr, y, sample(c[j], image_off),
                   sample(c[j + 1], image_off));
        }
        copy_box(last, pix, nr, y, sample(c[len - 1], image_off), keep);
      }
    }
  });
}

// out = wa * a + wb * b, in float32 (float64 for double), rounded once; out may be a.
template <typename T>
void blend(T* out, const T* a, const T* b, int64_t len, double wa64, double wb64) {
  if constexpr (std::is_same_v<T, double>) {
    for (int64_t e = 0; e < len; ++e) out[e] = dblend(a[e], b[e], wa64, wb64);
  } else {
    const auto wa = static_cast<float>(wa64), wb = static_cast<float>(wb64);
    int64_t e = 0;
#ifdef CUTMIX_EXT_X86
    if (use_avx2()) {
      auto* o16 = reinterpret_cast<uint16_t*>(out);
      const auto* a16 = reinterpret_cast<const uint16_t*>(a);
      const auto* b16 = reinterpret_cast<const uint16_t*>(b);
      if constexpr (std::is_same_v<T, uint8_t>) e = blend_u8_avx2(out, a, b, len, wa, wb);
      if constexpr (std::is_same_v<T, c10::BFloat16>) e = blend_bf16_avx2(o16, a16, b16, len, wa, wb);
      if constexpr (std::is_same_v<T, c10::Half>) e = blend_f16_avx2(o16, a16, b16, len, wa, wb);
      if constexpr (std::is_same_v<T, float>) e = blend_f32_avx2(out, a, b, len, wa, wb);
    }
#endif
    for (; e < len; ++e) {
      const float r = fblend(static_cast<float>(a[e]), static_cast<float>(b[e]), wa, wb);
      if constexpr (std::is_same_v<T, uint8_t>) {
        out[e] = static_cast<uint8_t>(std::clamp(std::nearbyint(r), 0.0f, 255.0f));
      } else {
        out[e] = static_cast<T>(r);
      }
    }
  }
}

template <typename T>
void blend(T* dst, const T* src, int64_t len, double lam) {
  blend(dst, dst, src, len, lam, 1.0 - lam);
}

template <typename T>
void mixup_cpu(const Plan& p, const Cycles& cyc) {
  const MixArgs& m = p.args;
  const Sample* table = p.table.data();
  const int64_t row_len = m.w * m.q;
  const int64_t chunk = std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(sizeof(T)));
  const int64_t per_row = (row_len + chunk - 1) / chunk;
  const int64_t tasks = m.a * m.h * per_row;
  T* base = static_cast<T*>(m.images);

  at::parallel_for(0, tasks, grain_for(m.n * chunk * sizeof(T)), [&](int64_t t0, int64_t t1) {
    const auto saved = scratch<T>(std::min(chunk, row_len));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / per_row, e0 = (t % per_row) * chunk;
      const int64_t len = std::min(chunk, row_len - e0);
      const int64_t a = r / m.h, y = r % m.h;
      auto ptr = [&](int64_t i) {
        return base + i * m.stride_n + a * m.stride_a + y * m.stride_h + e0;
      };
      int64_t begin = 0;
      for (const int64_t end : cyc.end) {
        const int64_t* c = cyc.order.data() + begin;
        const int64_t n = end - begin;
        begin = end;
        if (n == 1) continue;  // paired with itself: kept exactly, not blended with itself
        std::memcpy(saved.get(), ptr(c[0]), len * sizeof(T));
        for (int64_t j = 0; j + 1 < n; ++j) blend(ptr(c[j]), ptr(c[j + 1]), len, table[c[j]].lam);
        const int64_t last = c[n - 1];
        blend(ptr(last), saved.get(), len, table[last].lam);
      }
    }
  });
}

// The general op: each sample pastes, blends or fills inside its own box. The same cycle walk
// as CutMix over the rows the union of the boxes crosses; only the step differs per sample.
template <typename T>
void elem_step(const Sample& s, int64_t q, T* dst, const T* src, uint64_t fill_bits) {
  const int64_t e0 = s.x1 * q, e1 = s.x2 * q;
  if (e1 <= e0) return;
  switch (s.mode) {
    case kModeCut:
      copy_bytes(reinterpret_cast<char*>(dst + e0), reinterpret_cast<const char*>(src + e0),
                 (e1 - e0) * static_cast<int64_t>(sizeof(T)));
      break;
    case kModeBlend: blend(dst + e0, dst + e0, src + e0, e1 - e0, s.lam, 1.0 - s.lam); break;
    default: {
      T v;
      std::memcpy(&v, &fill_bits, sizeof(T));
      std::fill(dst + e0, dst + e1, v);
    }
  }
}

template <typename T>
void elem_cpu(const Plan& p, const Cycles& cyc) {
  const MixArgs& m = p.args;
  const Sample* table = p.table.data();
  const int64_t rows_h = m.uy2 - m.uy1;
  const int64_t rows = m.a * rows_h;
  if (rows == 0) return;
  const int64_t span = (m.ux2 - m.ux1) * m.q;  // elements of a row inside the union
  T* base = static_cast<T*>(m.images);
  const int64_t block = std::clamp<int64_t>(kBlockBytes / (span * sizeof(T)), 1, kMaxRowBlock);
  at::parallel_for(0, rows, grain_for(m.n * span * sizeof(T)), [&](int64_t r0, int64_t r1) {
    const auto saved = scratch<T>(std::min(block, r1 - r0) * span);
    int64_t y[kMaxRowBlock], off[kMaxRowBlock];
    for (int64_t rb = r0; rb < r1; rb += block) {
      const int64_t nr = std::min(block, r1 - rb);
      for (int64_t k = 0; k < nr; ++k) {
        y[k] = m.uy1 + (rb + k) % rows_h;
        off[k] = ((rb + k) / rows_h) * m.stride_a + y[k] * m.stride_h;
      }
      // Sample i's rows of the block, each step taking from `src` (a sample, or the saved rows).
      auto step = [&](int64_t i, const T* src_sample, bool from_saved) {
        const Sample& s = table[i];
        T* own = base + i * m.stride_n;
        const bool reads = !from_saved && s.mode != kModeFill;
        for (int64_t k = 0; k < nr; ++k) {
          const int64_t ahead = k + kPrefetchRows;
          if (reads && ahead < nr && y[ahead] >= s.y1 && y[ahead] < s.y2) {
            prefetch_bytes(reinterpret_cast<const char*>(src_sample + off[ahead] + s.x1 * m.q),
                           (s.x2 - s.x1) * m.q * static_cast<int64_t>(sizeof(T)));
          }
          if (y[k] < s.y1 || y[k] >= s.y2) continue;
          const T* src = from_saved ? saved.get() + k * span - m.ux1 * m.q : src_sample + off[k];
          elem_step(s, m.q, own + off[k], src, m.fill_bits);
        }
      };
      int64_t begin = 0;
      for (const int64_t end : cyc.end) {
        const int64_t* c = cyc.order.data() + begin;
        const int64_t len = end - begin;
        begin = end;
        if (len == 1) {  // paired with itself: only a fill changes it
          if (table[c[0]].mode == kModeFill) step(c[0], nullptr, true);
          continue;
        }
        const T* first = base + c[0] * m.stride_n;
        for (int64_t k = 0; k < nr; ++k) {
          std::memcpy(saved.get() + k * span, first + off[k] + m.ux1 * m.q, span * sizeof(T));
        }
        for (int64_t j = 0; j + 1 < len; ++j) step(c[j], base + c[j + 1] * m.stride_n, false);
        step(c[len - 1], nullptr, true);
      }
    }
  });
}

// The out-of-place form. A task is a run of rows of one (sample, a) plane. Runs of rows that
// no box crosses are one copy (CutMix) or one blend (MixUp) when rows are dense, so a small box
// costs little more than a memcpy; rows a box crosses are split at the two boxes' edges into
// segments that copy x[j], copy x[src], add both (the transposed form) or are zero.
// One row's pieces between the two boxes' edges: what each takes. Rows with the same
// (keep crosses, take crosses) share them.
struct Segments {
  enum Kind : int8_t { kZero, kOwn, kSrc, kBoth };
  int64_t edge[6];
  Kind kind[5];
  int count = 0;
};

Segments segments_of(const GatherRow& row, bool kr, bool tr, int64_t q, int64_t row_len) {
  const int64_t k1 = kr ? row.keep.x1 * q : 0, k2 = kr ? row.keep.x2 * q : 0;
  const int64_t t1 = tr ? row.take.x1 * q : 0, t2 = tr ? row.take.x2 * q : 0;
  int64_t e[6] = {0, k1, k2, t1, t2, row_len};
  std::sort(e, e + 6);
  Segments sg;
  sg.edge[0] = 0;
  for (int s = 0; s < 5; ++s) {
    if (e[s] == e[s + 1]) continue;
    const bool self = e[s] < k1 || e[s] >= k2, taken = e[s] >= t1 && e[s] < t2;
    sg.kind[sg.count] = self && taken ? Segments::kBoth
                        : self        ? Segments::kOwn
                        : taken       ? Segments::kSrc
                                      : Segments::kZero;
    sg.edge[++sg.count] = e[s + 1];
  }
  return sg;
}

// own_done: dst already holds x[j]'s row, so the pieces that copy it are skipped.
template <typename T>
void gather_row(const Segments& sg, T* dst, const T* own, const T* src, bool own_done = false) {
  for (int s = 0; s < sg.count; ++s) {
    if (own_done && sg.kind[s] == Segments::kOwn) continue;
    const int64_t e0 = sg.edge[s], e1 = sg.edge[s + 1];
    const int64_t bytes = (e1 - e0) * static_cast<int64_t>(sizeof(T));
    switch (sg.kind[s]) {
      case Segments::kBoth: blend(dst + e0, own + e0, src + e0, e1 - e0, 1.0, 1.0); break;
      case Segments::kOwn:
        copy_bytes(reinterpret_cast<char*>(dst + e0), reinterpret_cast<const char*>(own + e0), bytes);
        break;
      case Segments::kSrc:
        copy_bytes(reinterpret_cast<char*>(dst + e0), reinterpret_cast<const char*>(src + e0), bytes);
        break;
      default: std::memset(dst + e0, 0, bytes);
    }
  }
}

// CutMix when whole samples are dense: copy each chunk of planes with one memcpy (large copies
// get the C library's streaming stores), then redo the rows a box crosses.
template <typename T>
void gather_cutmix_dense(const GatherArgs& m) {
  const int64_t row_len = m.w * m.q, plane = m.h * row_len;
  const int64_t plane_bytes = plane * static_cast<int64_t>(sizeof(T));
  const int64_t planes_per_task = std::clamp<int64_t>((256 << 10) / plane_bytes, 1, m.a);
  const int64_t per_sample = (m.a + planes_per_task - 1) / planes_per_task;
  const T* in = static_cast<const T*>(m.in);
  T* out = static_cast<T*>(m.out);
  at::parallel_for(0, m.n * per_sample, grain_for(planes_per_task * plane_bytes), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j = t / per_sample, a0 = (t % per_sample) * planes_per_task;
      const int64_t a1 = std::min(m.a, a0 + planes_per_task);
      const GatherRow& row = m.table[j];
      const T* own = in + j * m.in_stride_n;
      const T* src = in + row.src * m.in_stride_n;
      T* dst = out + j * m.out_stride_n;
      std::memcpy(dst + a0 * plane, own + a0 * plane, (a1 - a0) * plane_bytes);
      for (int64_t y = 0; y < m.h;) {
        const bool kr = box_has_row(row.keep, y), tr = box_has_row(row.take, y);
        int64_t end = y + 1;
        while (end < m.h && box_has_row(row.keep, end) == kr && box_has_row(row.take, end) == tr) ++end;
        if (kr || tr) {
          const Segments sg = segments_of(row, kr, tr, m.q, row_len);
          for (int64_t a = a0; a < a1; ++a) {
            for (int64_t r = y; r < end; ++r) {
              const int64_t off = a * plane + r * row_len;
              gather_row(sg, dst + off, own + off, src + off, /*own_done=*/true);
            }
          }
        }
        y = end;
      }
    }
  });
}

template <typename T>
void gather_cpu(const GatherArgs& m) {
  const int64_t row_len = m.w * m.q;
  const int64_t plane = m.h * row_len;
  if (m.cutmix && m.in_stride_h == row_len && m.out_stride_h == row_len &&
      (m.a == 1 || (m.in_stride_a == plane && m.out_stride_a == plane))) {
    gather_cutmix_dense<T>(m);
    return;
  }
  const int64_t row_bytes = row_len * static_cast<int64_t>(sizeof(T));
  const bool dense = m.in_stride_h == row_len && m.out_stride_h == row_len;
  const int64_t rows_per_task = std::clamp<int64_t>(kBlockBytes / row_bytes, 1, m.h);
  const int64_t per_plane = (m.h + rows_per_task - 1) / rows_per_task;
  const T* in = static_cast<const T*>(m.in);
  T* out = static_cast<T*>(m.out);
  const int64_t tasks = m.n * m.a * per_plane;
  at::parallel_for(0, tasks, grain_for(rows_per_task * row_bytes), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t plane = t / per_plane, j = plane / m.a, a = plane % m.a;
      const int64_t y0 = (t % per_plane) * rows_per_task;
      const int64_t y1 = std::min(m.h, y0 + rows_per_task);
      const GatherRow& row = m.table[j];
      const T* own = in + j * m.in_stride_n + a * m.in_stride_a;
      const T* src = in + row.src * m.in_stride_n + a * m.in_stride_a;
      T* dst = out + j * m.out_stride_n + a * m.out_stride_a;
      if (!m.cutmix) {
        if (row.src == j) {  // paired with itself: a copy, not a blend with itself
          for (int64_t y = y0; y < y1; ++y) {
            std::memcpy(dst + y * m.out_stride_h, own + y * m.in_stride_h, row_bytes);
          }
          continue;
        }
        if (dense) {
          blend(dst + y0 * row_len, own + y0 * row_len, src + y0 * row_len, (y1 - y0) * row_len,
                row.wa, row.wb);
          continue;
        }
        for (int64_t y = y0; y < y1; ++y) {
          blend(dst + y * m.out_stride_h, own + y * m.in_stride_h, src + y * m.in_stride_h,
                row_len, row.wa, row.wb);
        }
        continue;
      }
      for (int64_t y = y0; y < y1;) {
        // A run of rows that the boxes cross alike.
        const bool kr = box_has_row(row.keep, y), tr = box_has_row(row.take, y);
        int64_t end = y + 1;
        while (end < y1 && box_has_row(row.keep, end) == kr && box_has_row(row.take, end) == tr) ++end;
        if (!kr && !tr && dense) {
          std::memcpy(dst + y * row_len, own + y * row_len, (end - y) * row_bytes);
        } else {
          const Segments sg = segments_of(row, kr, tr, m.q, row_len);
          for (int64_t r = y; r < end; ++r) {
            gather_row(sg, dst + r * m.out_stride_h, own + r * m.in_stride_h, src + r * m.in_stride_h);
          }
        }
        y = end;
      }
    }
  });
}

at::Tensor gather_cpu_op(bool cutmix, const at::Tensor& x, const at::Tensor& perm,
                         const at::Tensor& params, bool transpose) {
  GatherPlan g = make_gather_plan(cutmix, transpose, x, perm, params);
  TORCH_CHECK_VALUE(x.is_cpu(), "x: expected a CPU tensor, got ", x.device());
  g.args.table = g.rows.data();
  switch (g.args.scalar) {
    case kU8: gather_cpu<uint8_t>(g.args); break;
    case kF16: gather_cpu<c10::Half>(g.args); break;
    case kBF16: gather_cpu<c10::BFloat16>(g.args); break;
    case kF32: gather_cpu<float>(g.args); break;
    default: gather_cpu<double>(g.args); break;
  }
  return g.out;
}

void targets_cpu(const Plan& p, bool cutmix) {
  const MixArgs& m = p.args;
  const Sample* table = p.table.data();
  const int64_t K = m.num_classes;
  const double eps = m.smoothing;
  at::parallel_for(0, m.n, grain_for(K * 8), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t j = partner(m, table, i);
      const double lam = sample_lam(m, table, i, cutmix);
      float* row = m.targets + i * K;
      if (is_index_label(m)) {
        const double off = smoothed(0.0, eps, K), on = smoothed(1.0, eps, K);
        const int64_t ya = label_index(m, i), yb = label_index(m, j);
        const float rest = target_value(lam, off, off);
        if (rest == 0.0f) {  // no smoothing: memset is several times faster than a fill loop
          std::memset(row, 0, K * sizeof(float));
        } else {
          std::fill(row, row + K, rest);
        }
        row[yb] = target_value(lam, off, on);
        row[ya] = target_value(lam, on, ya == yb ? on : off);
      } else {
        for (int64_t k = 0; k < K; ++k) {
          row[k] = target_value(lam, smoothed(label_prob(m, i, k), eps, K),
                                smoothed(label_prob(m, j, k), eps, K));
        }
      }
    }
  });
}

at::Tensor cutmix_cpu_op(const at::Tensor& images, const at::Tensor& labels,
                         const at::Tensor& perm, const at::Tensor& boxes,
                         std::optional<int64_t> num_classes, double label_smoothing) {
  Plan p = make_plan(true, images, labels, perm, boxes, num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  cutmix_cpu(p, cycles_of(p));
  targets_cpu(p, true);
  return targets;
}

at::Tensor mixup_cpu_op(const at::Tensor& images, const at::Tensor& labels,
                        const at::Tensor& perm, const at::Tensor& lam,
                        std::optional<int64_t> num_classes, double label_smoothing) {
  Plan p = make_plan(false, images, labels, perm, lam, num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  const Cycles cyc = cycles_of(p);
  switch (p.args.scalar) {
    case kU8: mixup_cpu<uint8_t>(p, cyc); break;
    case kF16: mixup_cpu<c10::Half>(p, cyc); break;
    case kBF16: mixup_cpu<c10::BFloat16>(p, cyc); break;
    case kF32: mixup_cpu<float>(p, cyc); break;
    default: mixup_cpu<double>(p, cyc); break;
  }
  targets_cpu(p, false);
  return targets;
}

at::Tensor elem_cpu_op(const at::Tensor& images, const std::optional<at::Tensor>& labels,
                       const at::Tensor& perm, const at::Tensor& boxes, const at::Tensor& lam,
                       const at::Tensor& mode, double fill, std::optional<int64_t> num_classes,
                       double label_smoothing) {
  Plan p = make_elem_plan(images, labels.value_or(at::Tensor()), perm, boxes, lam, mode, fill,
                          num_classes, label_smoothing);
  at::Tensor targets = allocate_targets(p, images);
  const Cycles cyc = cycles_of(p);
  // Integer masks only paste and fill, which move bits: any type of their width will do.
  switch (p.args.scalar == kBits ? p.args.elem_size : -1) {
    case 1: elem_cpu<uint8_t>(p, cyc); break;
    case 2: elem_cpu<c10::Half>(p, cyc); break;
    case 4: elem_cpu<float>(p, cyc); break;
    case 8: elem_cpu<double>(p, cyc); break;
    default:
      switch (p.args.scalar) {
        case kU8: elem_cpu<uint8_t>(p, cyc); break;
        case kF16: elem_cpu<c10::Half>(p, cyc); break;
        case kBF16: elem_cpu<c10::BFloat16>(p, cyc); break;
        case kF32: elem_cpu<float>(p, cyc); break;
        default: elem_cpu<double>(p, cyc); break;
      }
  }
  targets_cpu(p, false);
  return targets;
}

}  // namespace

TORCH_LIBRARY_IMPL(cutmix_ext, CPU, m) {
  m.impl("cutmix_", &cutmix_cpu_op);
  m.impl("mixup_", &mixup_cpu_op);
  m.impl("mix_", &elem_cpu_op);
  m.impl("cutmix", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& boxes,
                      bool transpose) { return gather_cpu_op(true, x, perm, boxes, transpose); });
  m.impl("mixup", [](const at::Tensor& x, const at::Tensor& perm, const at::Tensor& lam,
                     bool transpose) { return gather_cpu_op(false, x, perm, lam, transpose); });
}

}  // namespace cutmix_ext
