// How each 256-value super-block format's weights become eight 256-bit
// vectors of bytes (AVX2), for the row kernels of superblock_avx2.cc and the
// tile kernel of superblock_tiles_avx512.cc. w[i] holds values 32i..32i+31
// of the super-block in order (value v pairs with activation v), and
// 16-value sub-block s covers values 16s..16s+15:
//   Q4_K, Q5_K  unsigned q (0..15 / 0..31); scale and min per 32 values
//   Q6_K        unsigned q (0..63), value q - 32; int8 scale per 16 at +192
//   Q2_K        unsigned q (0..3); scale and min nibbles per 16 in bytes 0..15
//   Q3_K        unsigned q + 4 (0..7), value q; scales per 16 (UnpackQ3Scales)
//   IQ4_XS      signed table values; scale ls - 32 per 32 values
//
// Include only from files compiled with at least -mavx2 -mf16c. Everything
// here has internal linkage (an unnamed namespace), so files compiled with
// different -m flags never share a copy (matmul_internal.h).
//
// Thread-safety: pure functions.
#ifndef TESSERA_KERNELS_CPU_SUPERBLOCK_WEIGHTS_AVX2_H_
#define TESSERA_KERNELS_CPU_SUPERBLOCK_WEIGHTS_AVX2_H_

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

#define TESSERA_SB_INLINE inline __attribute__((always_inline))

TESSERA_SB_INLINE float HalfAt(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _cvtsh_ss(h);
}

TESSERA_SB_INLINE __m256i Load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Q4_K (kQ5 false) and Q5_K: the values and the 6-bit (scale, min) of each
// 32-value sub-block j.
template <bool kQ5>
TESSERA_SB_INLINE void UnpackQ45K(const uint8_t* blk, __m256i* w, int* sc, int* m) {
  const uint8_t* s = blk + 4;
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 6) << 4);
    m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
  }
  const uint8_t* qs = blk + (kQ5 ? 48 : 16);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i qh = kQ5 ? Load256(blk + 16) : _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i raw = Load256(qs + 32 * c);
    w[2 * c] = _mm256_and_si256(raw, low4);
    w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    if constexpr (kQ5) {
      // Bit j of qh[l] is value l of sub-block j's fifth bit.
      for (int h = 0; h < 2; ++h) {
        const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + h), one);
        w[2 * c + h] = _mm256_or_si256(w[2 * c + h], _mm256_slli_epi16(bit, 4));
      }
    }
  }
}

// Q6_K: values 128h + 32k + l are w[4h + k].
TESSERA_SB_INLINE void UnpackQ6K(const uint8_t* blk, __m256i* w) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i three = _mm256_set1_epi8(3);
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = Load256(blk + 64 * h);
    const __m256i ql1 = Load256(blk + 64 * h + 32);
    const __m256i qh = Load256(blk + 128 + 32 * h);
    const __m256i lo[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                           _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
    for (int k = 0; k < 4; ++k) {
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
      w[4 * h + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(hi, 4));
    }
  }
}

// Q2_K (kQ3 false) and Q3_K: for half h and bit pair j, the values
// 128h + 32j + l are w[4h + j].
template <bool kQ3>
TESSERA_SB_INLINE void UnpackLowBitK(const uint8_t* blk, __m256i* w) {
  const uint8_t* qs = blk + (kQ3 ? 32 : 16);
  const __m256i three = _mm256_set1_epi8(3);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i hmask = kQ3 ? Load256(blk) : _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i q = Load256(qs + 32 * h);
    for (int j = 0; j < 4; ++j) {
      __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), three);
      if constexpr (kQ3) {
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + j), one);
        u = _mm256_or_si256(u, _mm256_slli_epi16(hb, 2));
      }
      w[4 * h + j] = u;
    }
  }
}

// IQ4_XS: the signed table values and each 32-value sub-block's ls - 32.
TESSERA_SB_INLINE void UnpackIq4Xs(const uint8_t* blk, __m256i* w, int* scale) {
  uint16_t scales_h;
  std::memcpy(&scales_h, blk + 2, sizeof(scales_h));
  const __m128i table128 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
  const __m256i table = _mm256_set_m128i(table128, table128);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int j = 0; j < 8; ++j) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 8 + 16 * j));
    w[j] = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4));
    const int ls = ((blk[4 + j / 2] >> (4 * (j % 2))) & 0x0F) | (((scales_h >> (2 * j)) & 3) << 4);
    scale[j] = ls - 32;
  }
}

}  // namespace
}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_SUPERBLOCK_WEIGHTS_AVX2_H_
