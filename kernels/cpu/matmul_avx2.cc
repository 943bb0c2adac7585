// AVX2 + FMA + F16C row kernels (compiled with -mavx2 -mfma -mf16c; called only
// when cpu/isa.cc found those features).
//
// Fixed per-(token,row) reduction orders:
//  - float formats: two 8-lane accumulators over 16-column steps, then one
//    8-column step into the first, then a zero-padded tail into the second;
//    finally HSum(acc0 + acc1).
//  - the 32-value block formats: per block, the exact int32 lane sums of
//    maddubs+madd are converted to float and FMA'd with (d_w * d_x) into one
//    of two 8-lane accumulators (even blocks, odd blocks); result
//    HSum(acc0 + acc1), plus for Q4_1 the m_w * s_x terms (see
//    MinBlockKernel). Q4_0's nibbles and Q5_0's 5-bit values are unpacked to
//    signed bytes (q - 8, q - 16) and then take Q8_0's path
//    (SignedBlockKernel); Q5_1's take Q4_1's. Integer sums stay exact, as
//    llama.cpp's.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/block_weights_avx2.h"
#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/row_groups.h"

namespace tessera::kernels::internal {
namespace {

float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _cvtsh_ss(h);
}

template <DType kType>
__m256 Load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  } else {
    const __m256i w = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}

template <DType kType>
float LoadOne(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    float f;
    std::memcpy(&f, row + 4 * i, sizeof(f));
    return f;
  } else if constexpr (kType == DType::kF16) {
    return LoadHalf(row + 2 * i);
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, sizeof(h));
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
  }
}

template <DType kType>
struct FloatKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t n = a.w->cols;
    const float* x[NT];
    __m256 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      x[k] = a.x + (t0 + k) * n;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 w0 = Load8<kType>(row, i);
      const __m256 w1 = Load8<kType>(row, i + 8);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), acc0[k]);
        acc1[k] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[k] + i + 8), acc1[k]);
      }
    }
    if (i + 8 <= n) {
      const __m256 w0 = Load8<kType>(row, i);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), acc0[k]);
      }
      i += 8;
    }
    if (i < n) {
      alignas(32) float wt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t j = i; j < n; ++j) wt[j - i] = LoadOne<kType>(row, j);
      const __m256 w0 = _mm256_load_ps(wt);
      for (int k = 0; k < NT; ++k) {
        alignas(32) float xt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        std::memcpy(xt, x[k] + i, sizeof(float) * (n - i));
        acc1[k] = _mm256_fmadd_ps(w0, _mm256_load_ps(xt), acc1[k]);
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k]));
    }
  }
};

#define TESSERA_INLINE inline __attribute__((always_inline))

// Q8_0, Q4_0 and Q5_0: blocks alternate between two accumulators (even
// blocks acc0, odd blocks acc1) to hide FMA latency.
template <typename Weights>
struct SignedBlockKernel {
  template <int NT>
  static TESSERA_INLINE void Block(const uint8_t* blk, int64_t b, const int8_t* const* q,
                                   const float* const* dx, __m256i ones, __m256* acc) {
    const float dw = LoadHalf(blk);
    const __m256i w = Weights::Load(blk);
    // maddubs wants unsigned x signed: move w's sign onto x. |w| <= 128 and
    // |x| <= 127, so the int16 pair sums (<= 32512) cannot saturate.
    const __m256i abs_w = _mm256_sign_epi8(w, w);
    for (int k = 0; k < NT; ++k) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k] + 32 * b));
      const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(xv, w));
      const __m256i p32 = _mm256_madd_epi16(p16, ones);
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx[k][b]), _mm256_cvtepi32_ps(p32), acc[k]);
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    __m256 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    constexpr int64_t kBytes = Weights::kBlockBytes;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      Block<NT>(row + kBytes * b, b, q, dx, ones, acc0);
      Block<NT>(row + kBytes * (b + 1), b + 1, q, dx, ones, acc1);
    }
    if (b < nb) Block<NT>(row + kBytes * b, b, q, dx, ones, acc0);
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k]));
    }
  }
};

// Q4_1 and Q5_1: accumulator alternation as Q8_0. The m_w * s_x terms ride
// along in 4-lane vectors (d*dx, m*sx, 0, 0) summed per accumulator; mins =
// lane 1 of (macc0 + macc1). maddubs takes the unsigned weights (<= 31)
// against signed x (|x| <= 127): pair sums stay below int16's limit.
template <typename Weights>
struct MinBlockKernel {
  template <int NT>
  static TESSERA_INLINE void Block(const uint8_t* blk, int64_t b, const int8_t* const* q,
                                   const float* const* dx, const float* const* sx,
                                   __m256i ones, __m256* acc, __m128* macc) {
    uint32_t dm_bits;
    std::memcpy(&dm_bits, blk, sizeof(dm_bits));
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(dm_bits)));  // (d, m, 0, 0)
    const __m256i w = Weights::Load(blk);
    for (int k = 0; k < NT; ++k) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k] + 32 * b));
      const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xv), ones);
      const __m128 prod =
          _mm_mul_ps(dm, _mm_unpacklo_ps(_mm_load_ss(dx[k] + b), _mm_load_ss(sx[k] + b)));
      acc[k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(prod), _mm256_cvtepi32_ps(p32), acc[k]);
      macc[k] = _mm_add_ps(macc[k], prod);
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    const float* sx[NT];
    __m256 acc0[NT], acc1[NT];
    __m128 macc0[NT], macc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      sx[k] = a.qx.s + (t0 + k) * nb;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
      macc0[k] = _mm_setzero_ps();
      macc1[k] = _mm_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    constexpr int64_t kBytes = Weights::kBlockBytes;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      Block<NT>(row + kBytes * b, b, q, dx, sx, ones, acc0, macc0);
      Block<NT>(row + kBytes * (b + 1), b + 1, q, dx, sx, ones, acc1, macc1);
    }
    if (b < nb) Block<NT>(row + kBytes * b, b, q, dx, sx, ones, acc0, macc0);
    for (int k = 0; k < NT; ++k) {
      const __m128 m = _mm_add_ps(macc0[k], macc1[k]);
      const float mins = _mm_cvtss_f32(_mm_shuffle_ps(m, m, 1));
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k])) + mins;
    }
  }
};

}  // namespace

void MatMulRowsAvx2(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.w->dtype) {
    case DType::kF32:
      return RunRowGroups<FloatKernel<DType::kF32>>(a, row_begin, row_end);
    case DType::kF16:
      return RunRowGroups<FloatKernel<DType::kF16>>(a, row_begin, row_end);
    case DType::kBF16:
      return RunRowGroups<FloatKernel<DType::kBF16>>(a, row_begin, row_end);
    case DType::kQ8_0:
      return RunRowGroups<SignedBlockKernel<Q8_0Weights>>(a, row_begin, row_end);
    case DType::kQ4_0:
      return RunRowGroups<SignedBlockKernel<Q4_0Weights>>(a, row_begin, row_end);
    case DType::kQ5_0:
      return RunRowGroups<SignedBlockKernel<Q5_0Weights>>(a, row_begin, row_end);
    case DType::kQ4_1:
      return RunRowGroups<MinBlockKernel<Q4_1Weights>>(a, row_begin, row_end);
    case DType::kQ5_1:
      return RunRowGroups<MinBlockKernel<Q5_1Weights>>(a, row_begin, row_end);
    case DType::kIQ4_NL:
      return RunRowGroups<SignedBlockKernel<Iq4NlWeights>>(a, row_begin, row_end);
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_XS:
      return MatMulRowsSuperBlockAvx2(a, row_begin, row_end);
  }
}

}  // namespace tessera::kernels::internal
