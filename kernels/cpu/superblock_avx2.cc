// AVX2 row kernels of the 256-value super-block formats (Q2_K, Q3_K, Q4_K,
// Q5_K, Q6_K, IQ4_XS; layouts in kernels/dtype.h), compiled with -mavx2
// -mfma -mf16c and called by the AVX2 and AVX-512 dispatchers
// (matmul_avx2.cc, matmul_avx512.cc) once cpu/isa.cc found AVX2.
//
// Each kernel forms, per super-block, exactly the integer sums the scalar
// kernel forms (kquants.cc, low_bit_kquants.cc, iq4_quants.cc) and then the
// same float operations in the same order, so these formats give the scalar
// kernels' bits on every ISA (kquant_test checks it by memcmp).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/row_groups.h"
#include "kernels/cpu/superblock_weights_avx2.h"

namespace tessera::kernels::internal {
namespace {

#define TESSERA_INLINE inline __attribute__((always_inline))

// The K-quants (layouts in kernels/dtype.h) against Q8_K activations. Per
// super-block the integer sums are exactly the scalar kernel's
// (kquants.cc), formed here with maddubs (unsigned quants <= 63 against
// int8 x: pair sums <= 16002, no saturation) and madd by the sub-block
// scales; then the same float operations in the same order, so the results
// are the scalar kernel's bits on every ISA. The weights of a super-block
// are unpacked once and reused by every token of the group.
TESSERA_INLINE int32_t HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// The exact integer sum of a super-block's 256 unsigned values w against
// int8 x, each 16 scaled by its sub-block's factor (scale[i]: the factors of
// values 32i..32i+15 and 32i+16..32i+31 as 16-bit lanes): maddubs pair sums
// (<= 16002 for values <= 63, no saturation), madd by the factors, int32
// adds.
TESSERA_INLINE int32_t ScaledDot(const __m256i* w, const __m256i* scale, const int8_t* xq) {
  __m256i sum = _mm256_setzero_si256();
  for (int i = 0; i < 8; ++i) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * i));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], xv), scale[i]));
  }
  return HSumI32(sum);
}

// Q4_K (kQ5 false) and Q5_K: acc += (d_w * d_x) * isum, macc += (dmin_w *
// d_x) * msum per super-block; result acc - macc.
template <bool kQ5>
struct Q45KKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    constexpr int64_t kBytes = kQ5 ? 176 : 144;
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT], macc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = macc[k] = 0.0f;
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + kBytes * b;
      int sc[8], m[8];
      __m256i w[8];  // sub-block j's 32 values, unsigned
      UnpackQ45K<kQ5>(blk, w, sc, m);
      __m256i scale[8];
      for (int j = 0; j < 8; ++j) scale[j] = _mm256_set1_epi16(static_cast<int16_t>(sc[j]));
      const float d = HalfAt(blk);
      const float dmin = HalfAt(blk + 2);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        const int32_t isum = ScaledDot(w, scale, xq);
        int32_t msum = 0;
        for (int j = 0; j < 8; ++j) msum += m[j] * (bs[2 * j] + bs[2 * j + 1]);
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        acc[k] += (d * dx) * static_cast<float>(isum);
        macc[k] += (dmin * dx) * static_cast<float>(msum);
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k] - macc[k];
  }
};

// Q6_K: the unsigned quants q (0..63) against x, minus 32 * sum over
// sub-blocks of scale * (the sub-block's sum of x, Q8_K's bsums): exactly
// the scalar kernel's sum of scale * (q - 32) * x. acc += (d_w * d_x) * isum.
struct Q6KKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = 0.0f;
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + 210 * b;
      const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
      __m256i w[8];      // values 128h + 32k + l, l < 32, in w[4h + k]
      UnpackQ6K(blk, w);
      __m256i scale[8];  // their sub-blocks' scales: 8h + 2k (l < 16), + 1
      for (int i = 0; i < 8; ++i) {
        scale[i] = _mm256_set_m128i(_mm_set1_epi16(scales[2 * i + 1]), _mm_set1_epi16(scales[2 * i]));
      }
      const float d = HalfAt(blk + 208);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        const int32_t isum = ScaledDot(w, scale, xq);
        int32_t offset = 0;
        for (int s = 0; s < 16; ++s) offset += scales[s] * bs[s];
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        acc[k] += (d * dx) * static_cast<float>(isum - 32 * offset);
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k];
  }
};

// Q2_K and Q3_K: per super-block, for each half h and bit pair j, the 32
// values 128h + 32j + l as unsigned bytes u (Q2_K: q in 0..3; Q3_K: q + 4 in
// 0..7, so q = u - 4), maddubs against x and madd by the scales of their two
// 16-value sub-blocks (8h + 2j, + 1). Q3_K then subtracts 4 * sum_s scale_s *
// bsum_s. The integer sums are the scalar kernel's (low_bit_kquants.cc), and
// so are the float operations: the same bits on every ISA.
template <bool kQ3>
struct LowBitKKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    constexpr int64_t kBytes = kQ3 ? 110 : 84;
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT], macc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = macc[k] = 0.0f;
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + kBytes * b;
      int sc[16], mn[16];
      if constexpr (kQ3) {
        UnpackQ3Scales(blk + 96, sc);
      } else {
        for (int s = 0; s < 16; ++s) {
          sc[s] = blk[s] & 0x0F;
          mn[s] = blk[s] >> 4;
        }
      }
      __m256i w[8], scale[8];
      UnpackLowBitK<kQ3>(blk, w);
      for (int i = 0; i < 8; ++i) {
        scale[i] = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(sc[2 * i + 1])),
                                    _mm_set1_epi16(static_cast<int16_t>(sc[2 * i])));
      }
      const float d = HalfAt(blk + (kQ3 ? 108 : 80));
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        const int32_t isum = ScaledDot(w, scale, xq);
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        int32_t side = 0;  // Q2_K: the mins' sum; Q3_K: the offset's
        for (int s = 0; s < 16; ++s) side += (kQ3 ? sc[s] : mn[s]) * bs[s];
        if constexpr (kQ3) {
          acc[k] += (d * dx) * static_cast<float>(isum - 4 * side);
        } else {
          acc[k] += (d * dx) * static_cast<float>(isum);
          macc[k] += (HalfAt(blk + 82) * dx) * static_cast<float>(side);
        }
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = kQ3 ? acc[k] : acc[k] - macc[k];
    }
  }
};

// IQ4_XS: per sub-block the signed table values (|v| <= 127) against x,
// with the sign moved onto x as for Q8_0 (pair sums <= 32258), madd by the
// sub-block's ls - 32; the scalar kernel's integer sum and float order, so
// its bits.
struct Iq4XsKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = 0.0f;
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + 136 * b;
      __m256i w[8], abs_w[8], scale[8];
      int ls[8];
      UnpackIq4Xs(blk, w, ls);
      for (int j = 0; j < 8; ++j) {
        abs_w[j] = _mm256_sign_epi8(w[j], w[j]);
        scale[j] = _mm256_set1_epi16(static_cast<int16_t>(ls[j]));
      }
      const float d = HalfAt(blk);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j));
          const __m256i p16 = _mm256_maddubs_epi16(abs_w[j], _mm256_sign_epi8(xv, w[j]));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, scale[j]));
        }
        acc[k] += (d * a.qx.d[(t0 + k) * nbk + b]) * static_cast<float>(HSumI32(sum));
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k];
  }
};

}  // namespace

void MatMulRowsSuperBlockAvx2(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.w->dtype) {
    case DType::kQ2_K:
      return RunRowGroups<LowBitKKernel<false>>(a, row_begin, row_end);
    case DType::kQ3_K:
      return RunRowGroups<LowBitKKernel<true>>(a, row_begin, row_end);
    case DType::kQ4_K:
      return RunRowGroups<Q45KKernel<false>>(a, row_begin, row_end);
    case DType::kQ5_K:
      return RunRowGroups<Q45KKernel<true>>(a, row_begin, row_end);
    case DType::kQ6_K:
      return RunRowGroups<Q6KKernel>(a, row_begin, row_end);
    case DType::kIQ4_XS:
      return RunRowGroups<Iq4XsKernel>(a, row_begin, row_end);
    default:
      return MatMulRowsScalar(a, row_begin, row_end);  // not a super-block format
  }
}

}  // namespace tessera::kernels::internal
