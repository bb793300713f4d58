// The plain description of one mixing call, shared by the CPU backend and the CUDA kernels.
// No torch headers: the .cu file includes only this and the CUDA runtime, which keeps nvcc fast.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define CUTMIX_HD __host__ __device__ __forceinline__
#else
#define CUTMIX_HD inline
#endif

namespace cutmix_ext {

enum Pairing : int32_t { kPairTable = 0, kPairRoll = 1, kPairFlip = 2 };
enum LabelKind : int32_t { kLabelI32, kLabelI64, kLabelF16, kLabelBF16, kLabelF32, kLabelF64 };
enum ScalarKind : int32_t { kU8, kF16, kBF16, kF32, kF64 };

// One row of the per-sample table.
struct Sample {
  int32_t src;             // partner: sample i takes its patch (or blend) from sample src
  int32_t x1, y1, x2, y2;  // CutMix box, half-open pixel coordinates
  int32_t unused;
  double lam;              // weight of sample i itself (MixUp; CutMix derives it from the box)
};

struct MixArgs {
  // Images viewed as (n, a, h, w * q) with the last dimension contiguous: `a` merges the leading
  // non-spatial dims, `q` the dims stored innermost (the channels of channels_last). Strides are
  // in elements.
  void* images;
  int64_t n, a, h, w, q;
  int64_t stride_n, stride_a, stride_h;
  int32_t elem_size;
  int32_t scalar;  // ScalarKind

  int32_t pairing;  // Pairing; kPairTable reads src from `table`
  // Parameters shared by the whole batch, used when `table` is null.
  int32_t x1, y1, x2, y2;
  double lam;
  const Sample* table;  // n rows, or null
  // Union of all boxes (CutMix): the only region the kernels visit.
  int32_t ux1, uy1, ux2, uy2;

  // targets[i] = lam_i * s(y_i) + (1 - lam_i) * s(y_src), s(y) = (1 - eps) * y + eps / K.
  float* targets;
  const void* labels;
  int32_t label_kind;  // LabelKind
  int64_t label_stride_n, label_stride_k;
  int64_t num_classes;
  double smoothing;
};

struct Box {
  int32_t x1, y1, x2, y2;
};

CUTMIX_HD bool box_has_row(const Box& b, int64_t y) { return y >= b.y1 && y < b.y2 && b.x1 < b.x2; }

// One output row of the out-of-place form, out[j] = (x[j] outside `keep`) + (x[src] inside
// `take`). CutMix adds the terms present (0, 1 or 2: the transposed form's boxes differ); MixUp
// has no `keep` box, a `take` box that is the whole image, and blends wa * x[j] + wb * x[src].
struct GatherRow {
  int32_t src;
  Box keep, take;
  int32_t unused;
  double wa, wb;
};

struct GatherArgs {
  // x and out viewed as (n, a, h, w * q) like MixArgs, each with its own strides (elements).
  const void* in;
  void* out;
  int64_t n, a, h, w, q;
  int64_t in_stride_n, in_stride_a, in_stride_h;
  int64_t out_stride_n, out_stride_a, out_stride_h;
  int32_t elem_size;
  int32_t scalar;  // ScalarKind
  int32_t cutmix;
  const GatherRow* table;  // n rows: a device pointer on CUDA, unless they travel inline
};

// Products and sums without FMA contraction, so the CPU and the GPU round identically.
CUTMIX_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
CUTMIX_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
CUTMIX_HD float fblend(float a, float b, float wa, float wb) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(a, wa), __fmul_rn(b, wb));
#else
  return a * wa + b * wb;
#endif
}
CUTMIX_HD double dblend(double a, double b, double wa, double wb) {
  return dadd(dmul(a, wa), dmul(b, wb));
}

CUTMIX_HD int64_t partner(const MixArgs& m, const Sample* table, int64_t i) {
  if (m.pairing == kPairRoll) return i == 0 ? m.n - 1 : i - 1;
  if (m.pairing == kPairFlip) return m.n - 1 - i;
  return table[i].src;
}

CUTMIX_HD Box box_of(const MixArgs& m, const Sample* table, int64_t i) {
  if (table == nullptr) return Box{m.x1, m.y1, m.x2, m.y2};
  const Sample& s = table[i];
  return Box{s.x1, s.y1, s.x2, s.y2};
}

// The exact-area lambda: the fraction of sample i that is still its own.
CUTMIX_HD double box_lam(const Box& b, int64_t h, int64_t w) {
  const double cut = static_cast<double>(static_cast<int64_t>(b.x2 - b.x1) * (b.y2 - b.y1));
  return 1.0 - cut / static_cast<double>(h * w);
}

CUTMIX_HD double sample_lam(const MixArgs& m, const Sample* table, int64_t i, bool cutmix) {
  if (cutmix) return box_lam(box_of(m, table, i), m.h, m.w);
  return table == nullptr ? m.lam : table[i].lam;
}

CUTMIX_HD double smoothed(double y, double eps, int64_t k) {
  return dadd(dmul(y, 1.0 - eps), eps / static_cast<double>(k));
}

CUTMIX_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

CUTMIX_HD float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24 is exact in float
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

CUTMIX_HD bool is_index_label(const MixArgs& m) {
  return m.label_kind == kLabelI32 || m.label_kind == kLabelI64;
}

CUTMIX_HD int64_t label_index(const MixArgs& m, int64_t i) {
  const int64_t off = i * m.label_stride_n;
  if (m.label_kind == kLabelI32) return static_cast<const int32_t*>(m.labels)[off];
  return static_cast<const int64_t*>(m.labels)[off];
}

// Entry k of sample i's (unsmoothed) label distribution.
CUTMIX_HD double label_prob(const MixArgs& m, int64_t i, int64_t k) {
  if (is_index_label(m)) return label_index(m, i) == k ? 1.0 : 0.0;
  const int64_t off = i * m.label_stride_n + k * m.label_stride_k;
  switch (m.label_kind) {
    case kLabelF16: return half_to_float(static_cast<const uint16_t*>(m.labels)[off]);
    case kLabelBF16:
      return bits_to_float(static_cast<uint32_t>(static_cast<const uint16_t*>(m.labels)[off]) << 16);
    case kLabelF32: return static_cast<const float*>(m.labels)[off];
    default: return static_cast<const double*>(m.labels)[off];
  }
}

CUTMIX_HD float target_value(double lam, double sa, double sb) {
  return static_cast<float>(dadd(dmul(lam, sa), dmul(1.0 - lam, sb)));
}

}  // namespace cutmix_ext
