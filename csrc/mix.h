// The plain description of one mixing call, shared by the CPU backend and the CUDA kernels.
// No torch headers: the .cu file includes only this and the CUDA runtime, which keeps nvcc fast.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define CUTMIX_HD __host__ __device__ __forceinline__
// A real call on the device: the drawing code is long, and inlined at every use it held more
// registers than the kernels' launch bounds leave.
#define CUTMIX_HD_CALL inline __host__ __device__ __noinline__
#else
#define CUTMIX_HD inline
#define CUTMIX_HD_CALL inline
#endif

namespace cutmix_ext {

enum Pairing : int32_t { kPairTable = 0, kPairRoll = 1, kPairFlip = 2 };
enum LabelKind : int32_t { kLabelI32, kLabelI64, kLabelF16, kLabelBF16, kLabelF32, kLabelF64 };
// kBits: integer or bool images (segmentation masks): moved and filled bit for bit, never blended.
enum ScalarKind : int32_t { kU8, kF16, kBF16, kF32, kF64, kBits };
// What the general op (`mix_`) does inside sample i's box: paste the partner's pixels (CutMix),
// blend with them by lam (MixUp), or write the fill value (CutOut).
enum SampleMode : int32_t { kModeCut = 0, kModeBlend = 1, kModeFill = 2 };
// Which kernel a call runs: one box or lam kind for the batch, or a mode per sample.
enum MixOp : int32_t { kOpCutMix, kOpMixUp, kOpElem };

// One row of the per-sample table.
struct Sample {
  int32_t src;             // partner: sample i takes its patch (or blend) from sample src
  int32_t x1, y1, x2, y2;  // CutMix box, half-open pixel coordinates
  int32_t mode;            // SampleMode, read by kOpElem only
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
  const Sample* table;  // n rows, or null (never for kOpElem)
  uint64_t fill_bits;   // kModeFill: the fill value's bits in the images' dtype (low bytes)
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

// Products and sums without FMA contraction, so the CPU and the GPU round identically (the host
// builds add -ffp-contract=off; nvcc contracts a * b + c by default, but never across these).
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
// The other operations IEEE 754 rounds exactly, spelled out for the same reason: a * b + c
// rounded once, a / b and sqrt(a).
CUTMIX_HD double dfma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
CUTMIX_HD double ddiv(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
CUTMIX_HD double dsqrt(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
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

// lam * sa + (1 - lam) * sb rounded once; where sa == sb (always so for a sample paired with
// itself), sa itself, which the blend is in exact arithmetic but can miss by a rounding.
CUTMIX_HD float target_value(double lam, double sa, double sb) {
  return static_cast<float>(sa == sb ? sa : dadd(dmul(lam, sa), dmul(1.0 - lam, sb)));
}

// ---- Drawing the parameters inside the kernel (sampling="device", CUDA graphs) ----
//
// Host sampling bakes one draw into a captured CUDA graph; these draws come from torch's CUDA
// generator instead (Philox, as torch's own random kernels), reading seed and offset from device
// memory while a graph is captured, so that every replay draws anew.

// The draws must be the same numbers on the GPU and in the host-compiled emulation
// (tests/emulation), or the emulated statistics are not the device's: so they use only the
// exactly rounded operations above, written out so that no compiler fuses or reorders them
// (nvcc would turn a * b + c into a fused multiply-add that the host rounds twice), and none of
// the math library's log, exp or cos(pi): CUDA's and glibc's are different approximations and
// differ in the last bit now and then, which moves a box edge or a gamma acceptance. Their
// plain-arithmetic stand-ins follow (fdlibm's polynomials; within 1-2 ulp, the same on both).

CUTMIX_HD uint64_t double_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
#endif
}
CUTMIX_HD double bits_double(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
#endif
}

constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2 to 32 bits: k * kLn2Hi is exact
constexpr double kLn2Lo = 1.90821492927058770002e-10;

// ln x for x > 0 (fdlibm's e_log.c): x = 2^k (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)),
// ln(1 + f) = 2 atanh(s), s = f / (2 + f), as an odd polynomial in s.
CUTMIX_HD double log_hd(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -bits_double(0x7ff0000000000000ull) : bits_double(0x7ff8000000000000ull);
  if (x == bits_double(0x7ff0000000000000ull)) return x;
  int k = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scaled into the normal range, exactly
    x = dmul(x, 18014398509481984.0);  // 2^54
    k = -54;
  }
  const uint64_t bits = double_bits(x);
  k += static_cast<int>(bits >> 52) - 1023;
  double m = bits_double((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);  // [1, 2)
  if (m > 1.4142135623730951) {
    m = dmul(m, 0.5);
    ++k;
  }
  const double f = dadd(m, -1.0), s = ddiv(f, dadd(2.0, f)), z = dmul(s, s), w = dmul(z, z);
  const double t1 = dmul(w, dfma(w, dfma(w, 1.531383769920937332e-01, 2.222219843214978396e-01),
                                 3.999999999940941908e-01));
  const double t2 = dmul(z, dfma(w, dfma(w, dfma(w, 1.479819860511658591e-01, 1.818357216161805012e-01),
                                         2.857142874366239149e-01),
                                 6.666666666666735130e-01));
  const double r = dadd(t2, t1), hfsq = dmul(dmul(0.5, f), f), dk = static_cast<double>(k);
  // dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f)
  const double tail = dadd(dmul(s, dadd(hfsq, r)), dmul(dk, kLn2Lo));
  return dadd(dmul(dk, kLn2Hi), -dadd(dadd(hfsq, -tail), -f));
}

// e^x (fdlibm's e_exp.c): x = k ln 2 + r, |r| <= ln(2) / 2, e^r from a rational approximation,
// times 2^k. Below -708 it returns 0 and above 709 infinity: the one use, 1 / (1 + e^x), then
// gives 1 or 0, as the exact value rounds to (or is within 1e-308 of).
CUTMIX_HD double exp_hd(double x) {
  if (x != x) return x;
  if (x > 709.0) return bits_double(0x7ff0000000000000ull);
  if (x < -708.0) return 0.0;
  const int k = static_cast<int>(dadd(dmul(x, 1.44269504088896338700e+00), x < 0.0 ? -0.5 : 0.5));
  const double dk = static_cast<double>(k);
  const double hi = dadd(x, -dmul(dk, kLn2Hi)), lo = dmul(dk, kLn2Lo), r = dadd(hi, -lo);
  const double t = dmul(r, r);
  const double p = dfma(t, dfma(t, dfma(t, dfma(t, 4.13813679705723846039e-08, -1.65339022054652515390e-06),
                                        6.61375632143793436117e-05),
                                -2.77777777770155933842e-03),
                        1.66666666666666019037e-01);
  const double c = dadd(r, -dmul(t, p));
  // 1 - ((lo - r * c / (2 - c)) - hi), then scaled by 2^k (k in [-1021, 1023]: a normal power)
  const double y = dadd(1.0, -dadd(dadd(lo, -ddiv(dmul(r, c), dadd(2.0, -c))), -hi));
  return dmul(y, bits_double(static_cast<uint64_t>(k + 1023) << 52));
}

// cos(2 pi v) for v in [0, 1] (the Box-Muller angle): reduced exactly to a in [0, 1/8], then
// fdlibm's cosine or sine polynomial (k_cos.c, k_sin.c) of 2 pi a.
CUTMIX_HD double cos_2pi(double v) {
  double a = v > 0.5 ? dadd(1.0, -v) : v;  // cos(2 pi v) = cos(2 pi (1 - v)); exact for v in [1/2, 1]
  double sign = 1.0;
  if (a > 0.25) {  // cos(2 pi a) = -cos(2 pi (1/2 - a)), exact again
    a = dadd(0.5, -a);
    sign = -1.0;
  }
  const bool sine = a > 0.125;  // cos(2 pi a) = sin(2 pi (1/4 - a))
  if (sine) a = dadd(0.25, -a);
  const double x = dmul(a, 6.283185307179586), z = dmul(x, x);
  double out;
  if (sine) {
    const double r = dfma(z, dfma(z, dfma(z, dfma(z, 1.58969099521155010221e-10, -2.50507602534068634195e-08),
                                          2.75573137070700676789e-06),
                                  -1.98412698298579493134e-04),
                          8.33333333332248946124e-03);
    out = dfma(dmul(z, x), dfma(z, r, -1.66666666666666324348e-01), x);
  } else {
    const double r = dmul(z, dfma(z, dfma(z, dfma(z, dfma(z, dfma(z, -1.13596475577881948265e-11,
                                                                  2.08757232129817482790e-09),
                                                          -2.75573143513906633035e-07),
                                                  2.48015872894767294178e-05),
                                          -1.38888888888741095749e-03),
                                  4.16666666666666019037e-02));
    out = dadd(1.0, -dadd(dmul(0.5, z), -dmul(z, r)));
  }
  return dmul(sign, out);
}

// Words of one sample's stream: torch's generator reserves this many per call.
constexpr uint64_t kDrawWords = 1024;
constexpr int kMaxGammaTries = 64;

struct DeviceDraw {
  // at::PhiloxCudaState, unpacked in the kernel: offsets count 32-bit words.
  uint64_t seed, offset;
  const int64_t* seed_ptr;
  const int64_t* offset_ptr;
  uint64_t offset_intragraph;
  int32_t captured;
  int32_t per_sample;
  int32_t pairing;  // 0 roll, 1 flip, 2 random
  int32_t unused;
  double alpha;
  int64_t* perm_out;   // (n,)
  int64_t* boxes_out;  // (n, 4), CutMix only
  double* lam_out;     // (n,)
};

struct U4 {
  uint32_t v[4];
};

CUTMIX_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Philox4x32-10 (Salmon et al., 2011), the generator behind curand and at::Philox4_32.
CUTMIX_HD_CALL U4 philox(U4 c, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo(0xD2511F53u, c.v[0], &hi0);
    const uint32_t lo1 = mulhilo(0xCD9E8D57u, c.v[2], &hi1);
    c = U4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// The stream of at::Philox4_32(seed, subsequence, offset): counter (offset, subsequence),
// four words per block.
struct PhiloxStream {
  uint32_t k0, k1;
  uint64_t block, subsequence;
  U4 out;
  int used;

  CUTMIX_HD PhiloxStream(uint64_t seed, uint64_t subseq, uint64_t offset_blocks)
      : k0(static_cast<uint32_t>(seed)), k1(static_cast<uint32_t>(seed >> 32)),
        block(offset_blocks), subsequence(subseq), out{}, used(4) {}

  CUTMIX_HD uint32_t next() {
    if (used == 4) {
      out = philox(U4{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)}},
                   k0, k1);
      ++block;
      used = 0;
    }
    // A select, not out.v[used]: a dynamic index would put the block in local memory.
    const int k = used++;
    return k == 0 ? out.v[0] : k == 1 ? out.v[1] : k == 2 ? out.v[2] : out.v[3];
  }

  // Uniform in (0, 1), 53 bits.
  CUTMIX_HD double uniform() {
    const uint64_t a = next() >> 5, b = next() >> 6;
    return dmul(dadd(static_cast<double>(a * 67108864u + b), 0.5), 1.0 / 9007199254740992.0);
  }

  CUTMIX_HD double normal() {  // Box-Muller
    const double u = uniform(), v = uniform();
    return dmul(dsqrt(dmul(-2.0, log_hd(u))), cos_2pi(v));
  }
};

// log Gamma(alpha, 1) by Marsaglia & Tsang, as on the host (a bounded number of tries: the
// acceptance rate is above 95%, so the bound is never reached in practice).
CUTMIX_HD double log_gamma_device(double alpha, PhiloxStream& s) {
  double log_boost = 0.0;
  if (alpha < 1.0) {
    log_boost = ddiv(log_hd(s.uniform()), alpha);
    alpha = dadd(alpha, 1.0);
  }
  const double d = dadd(alpha, -1.0 / 3.0), c = ddiv(1.0, dsqrt(dmul(9.0, d)));
  double x = 0.0, v = 1.0;
  for (int t = 0; t < kMaxGammaTries; ++t) {
    x = s.normal();
    v = dfma(c, x, 1.0);
    if (v <= 0.0) continue;
    v = dmul(dmul(v, v), v);
    const double u = s.uniform(), x2 = dmul(x, x);
    // u < 1 - 0.0331 x^4 || ln u < x^2 / 2 + d (1 - v + ln v)
    if (u < dfma(-0.0331, dmul(x2, x2), 1.0) ||
        log_hd(u) < dfma(0.5, x2, dmul(d, dadd(dadd(1.0, -v), log_hd(v))))) {
      break;
    }
  }
  return dadd(log_boost, log_hd(dmul(d, v > 0.0 ? v : 1.0)));
}

// Beta(alpha, alpha) as X / (X + Y), X, Y ~ Gamma(alpha). Beta(1, 1), the default of every
// library, is the uniform distribution: one draw instead of two gamma loops.
CUTMIX_HD double beta_device(double alpha, PhiloxStream& s) {
  if (alpha == 1.0) return s.uniform();
  const double lx = log_gamma_device(alpha, s), ly = log_gamma_device(alpha, s);
  return ddiv(1.0, dadd(1.0, exp_hd(dadd(ly, -lx))));
}

// The round keys of one call's random pairing: a single Philox block on a counter no sample
// stream uses (its high word is 1; sample streams are subsequences below 2^32).
CUTMIX_HD U4 feistel_keys(uint64_t seed, uint64_t offset_blocks) {
  return philox(U4{{static_cast<uint32_t>(offset_blocks), static_cast<uint32_t>(offset_blocks >> 32),
                    0u, 1u}},
                static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A 32-bit mixer (lowbias32): each output bit depends on every input bit.
CUTMIX_HD uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// A keyed permutation of [0, n) evaluated at i: a 4-round Feistel network on the smallest
// even-width power of two >= n, walked until it lands inside [0, n). Every sample finds its
// partner without a shared table, at the price of drawing from the permutations this network
// can express rather than from all n! of them. A round is the mixer on the half and its key
// (a handful of integer operations; the keys are drawn once per call).
CUTMIX_HD int64_t feistel_partner(int64_t i, int64_t n, const U4& keys) {
  int bits = 2;
  while ((int64_t{1} << bits) < n) bits += 2;
  const int half = bits / 2;
  const uint32_t mask = (1u << half) - 1u;
  uint32_t v = static_cast<uint32_t>(i);
  do {
    uint32_t l = v >> half, r = v & mask;
    for (int round = 0; round < 4; ++round) {
      const uint32_t t = l ^ (mix32(r ^ keys.v[round]) & mask);
      l = r;
      r = t;
    }
    v = (l << half) | r;
  } while (v >= static_cast<uint32_t>(n));
  return v;
}

CUTMIX_HD int64_t drawn_partner(const DeviceDraw& d, const U4& keys, int64_t i, int64_t n) {
  return d.pairing == 0 ? (i == 0 ? n - 1 : i - 1)
         : d.pairing == 1 ? n - 1 - i
                          : feistel_partner(i, n, keys);
}

// lam (and the CutMix box) of stream `stream` into *out: the sample's index (per sample) or 0
// (one draw for the batch). The partner is drawn apart (drawn_partner). Written through a
// pointer, not returned: a returned struct would cross the device call on the stack.
CUTMIX_HD_CALL void draw_row(double alpha, int64_t h, int64_t w, uint64_t seed,
                             uint64_t offset_blocks, uint64_t stream, bool cutmix, Sample* out) {
  PhiloxStream s(seed, stream, offset_blocks);
  const double beta = beta_device(alpha, s);
  out->lam = beta;
  if (!cutmix) return;
  // The host formula: centre uniform over the pixels, sides sqrt(1 - lam) of H and W.
  const double ux = s.uniform(), uy = s.uniform();
  int64_t rx = static_cast<int64_t>(dmul(ux, static_cast<double>(w)));
  int64_t ry = static_cast<int64_t>(dmul(uy, static_cast<double>(h)));
  rx = rx < w ? rx : w - 1;  // ux * w can round up to w
  ry = ry < h ? ry : h - 1;
  const double r = dmul(0.5, dsqrt(dadd(1.0, -beta)));
  const auto hw = static_cast<int64_t>(dmul(r, static_cast<double>(w)));
  const auto hh = static_cast<int64_t>(dmul(r, static_cast<double>(h)));
  const Box b{static_cast<int32_t>(rx - hw < 0 ? 0 : rx - hw),
              static_cast<int32_t>(ry - hh < 0 ? 0 : ry - hh),
              static_cast<int32_t>(rx + hw > w ? w : rx + hw),
              static_cast<int32_t>(ry + hh > h ? h : ry + hh)};
  out->x1 = b.x1, out->y1 = b.y1, out->x2 = b.x2, out->y2 = b.y2;
  out->lam = box_lam(b, h, w);
}

}  // namespace cutmix_ext
