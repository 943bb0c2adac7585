// How each 32-value block format's 32 weights become one 256-bit vector of
// bytes (AVX2), for the block kernels of matmul_avx2.cc and
// matmul_avx512.cc: signed weights for the formats whose f16 scale comes
// first (Q8_0 as stored, Q4_0 as q - 8, Q5_0 as q - 16, IQ4_NL from the
// table), unsigned ones for the formats with a block minimum (Q4_1, Q5_1).
// Values 0..15 of a block come from the low nibbles, 16..31 from the high.
//
// Include only from files compiled with at least -mavx2. Everything here has
// internal linkage (an unnamed namespace), so files compiled with different
// -m flags never share a copy (matmul_internal.h).
//
// Thread-safety: pure functions.
#ifndef TESSERA_KERNELS_CPU_BLOCK_WEIGHTS_AVX2_H_
#define TESSERA_KERNELS_CPU_BLOCK_WEIGHTS_AVX2_H_

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

#define TESSERA_BLOCK_INLINE inline __attribute__((always_inline))

struct Q8_0Weights {
  static constexpr int64_t kBlockBytes = 34;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  }
};
struct Q4_0Weights {
  static constexpr int64_t kBlockBytes = 18;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                       _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
  }
};

// Q5_0 / Q5_1: the nibbles as Q4_0's, plus bit j of qh (a little-endian
// uint32) as value j's fifth bit: byte j of the broadcast picks byte j/8 of
// qh, and a mask with all bits but bit j%8 set turns it into 0xFF exactly
// when that bit is set.
TESSERA_BLOCK_INLINE __m256i Unpack5(const uint8_t* qh_bytes, const uint8_t* qs) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                         0x0303030303030303));
  const __m256i set = _mm256_cmpeq_epi8(
      _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi8(-1));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i lo = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                      _mm256_set1_epi8(0x0F));
  return _mm256_or_si256(lo, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}
// IQ4_NL: each nibble looks its value up in kIq4Values (a byte shuffle).
struct Iq4NlWeights {
  static constexpr int64_t kBlockBytes = 18;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                       _mm256_set1_epi8(0x0F));
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
    return _mm256_shuffle_epi8(_mm256_set_m128i(table, table), q);
  }
};
struct Q5_0Weights {
  static constexpr int64_t kBlockBytes = 22;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) {
    return _mm256_sub_epi8(Unpack5(blk + 2, blk + 6), _mm256_set1_epi8(16));
  }
};

// The unsigned weights of blocks with an f16 scale and an f16 minimum
// first: Q4_1's nibbles, Q5_1's 5-bit values.
struct Q4_1Weights {
  static constexpr int64_t kBlockBytes = 20;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4));
    // Values 0..15 sit in the low nibbles, 16..31 in the high ones.
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                            _mm256_set1_epi8(0x0F));
  }
};
struct Q5_1Weights {
  static constexpr int64_t kBlockBytes = 24;
  static TESSERA_BLOCK_INLINE __m256i Load(const uint8_t* blk) { return Unpack5(blk + 4, blk + 8); }
};

#undef TESSERA_BLOCK_INLINE

}  // namespace
}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_BLOCK_WEIGHTS_AVX2_H_
