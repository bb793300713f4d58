// AVX2 loops for the MixUp blend d = a * wa + s * wb (d may be a) of uint8, float16, bfloat16
// (which the compiler leaves scalar) and float32. They compute exactly what the scalar loop does (a * wa + b * wb in
// float32, no FMA, rounded once to nearest even), so results do not depend on which loop ran.
// Chosen at run time: the build stays baseline x86-64; CUTMIX_EXT_NO_AVX2=1 forces the scalar
// loop (the tests compare the two).
#pragma once
#if defined(__x86_64__)
#define CUTMIX_EXT_X86 1
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>

namespace cutmix_ext {

#define CUTMIX_AVX2 __attribute__((target("avx2,f16c")))

inline bool use_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                          std::getenv("CUTMIX_EXT_NO_AVX2") == nullptr;
  return yes;
}

CUTMIX_AVX2 inline __m256 blend8(__m256 a, __m256 b, __m256 wa, __m256 wb) {
  return _mm256_add_ps(_mm256_mul_ps(a, wa), _mm256_mul_ps(b, wb));
}

CUTMIX_AVX2 inline __m256 load_u8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

CUTMIX_AVX2 inline __m256 load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

// uint8: cvtps2dq rounds half to even (the default MXCSR mode), the saturating packs clamp. 32
// bytes a step: the packs work within 128-bit lanes, so the dwords of the four vectors come out
// as r0[0:4], r1[0:4], r2[0:4], r3[0:4], r0[4:8], .. and one permute puts them in order.
CUTMIX_AVX2 inline int64_t blend_u8_avx2(uint8_t* d, const uint8_t* a, const uint8_t* s,
                                         int64_t len, float wa, float wb) {
  const __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t e = 0;
  for (; e + 32 <= len; e += 32) {
    const __m256i r0 = _mm256_cvtps_epi32(blend8(load_u8(a + e), load_u8(s + e), va, vb));
    const __m256i r1 = _mm256_cvtps_epi32(blend8(load_u8(a + e + 8), load_u8(s + e + 8), va, vb));
    const __m256i r2 = _mm256_cvtps_epi32(blend8(load_u8(a + e + 16), load_u8(s + e + 16), va, vb));
    const __m256i r3 = _mm256_cvtps_epi32(blend8(load_u8(a + e + 24), load_u8(s + e + 24), va, vb));
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + e), _mm256_permutevar8x32_epi32(bytes, order));
  }
  return e;
}

// bfloat16 <-> float32 is a shift; rounding to nearest even as c10::BFloat16 does (NaN -> 0x7FC0).
CUTMIX_AVX2 inline int64_t blend_bf16_avx2(uint16_t* d, const uint16_t* a, const uint16_t* s,
                                           int64_t len, float wa, float wb) {
  const __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb);
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  const __m256i nan = _mm256_set1_epi32(0x7fc0);
  int64_t e = 0;
  for (; e + 8 <= len; e += 8) {
    const __m256 r = blend8(load_bf16(a + e), load_bf16(s + e), va, vb);
    const __m256i bits = _mm256_castps_si256(r);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(bias, lsb)), 16);
    const __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(r, r, _CMP_UNORD_Q));
    const __m256i out = _mm256_blendv_epi8(rounded, nan, isnan);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(out, out), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + e), _mm256_castsi256_si128(packed));
  }
  return e;
}

CUTMIX_AVX2 inline int64_t blend_f16_avx2(uint16_t* d, const uint16_t* a, const uint16_t* s,
                                          int64_t len, float wa, float wb) {
  const __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb);
  int64_t e = 0;
  for (; e + 8 <= len; e += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + e)));
    const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + e)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + e),
                     _mm256_cvtps_ph(blend8(x, y, va, vb), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return e;
}

// float32: the compiler's loop is 4 wide (the baseline build); the same arithmetic 8 wide.
CUTMIX_AVX2 inline int64_t blend_f32_avx2(float* d, const float* a, const float* s, int64_t len,
                                          float wa, float wb) {
  const __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb);
  int64_t e = 0;
  for (; e + 8 <= len; e += 8) {
    _mm256_storeu_ps(d + e, blend8(_mm256_loadu_ps(a + e), _mm256_loadu_ps(s + e), va, vb));
  }
  return e;
}

#undef CUTMIX_AVX2

}  // namespace cutmix_ext
#endif
