// AVX-512F versions of vec_ops.h (compiled with -mavx512f and friends).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/vec_ops.h"

namespace tessera::kernels::internal {
namespace {

// The one definition of the AVX-512 dot product: DotAvx512 calls it, and
// AttendAvx512 inlines it, so both produce the same bits.
inline __attribute__((always_inline)) float DotInline(const float* a, const float* b,
                                                      int64_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  if (i + 16 <= n) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    i += 16;
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  const __m512 v = _mm512_add_ps(acc0, acc1);
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

float DotAvx512(const float* a, const float* b, int64_t n) { return DotInline(a, b, n); }

void AxpyAvx512(float alpha, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void HalfToFloatAvx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

}  // namespace tessera::kernels::internal

namespace tessera::kernels::internal {
namespace {

// Weighted sum of V rows with the output held in registers: lane-wise the
// same FMA sequence as AxpyAvx512 into a zeroed `out`, p = 0..n-1.
template <int kVecs>
void WeightedSum(const float* probs, float inv, const float* const* v_rows, int32_t n,
                 float* out) {
  __m512 acc[kVecs];
  for (int j = 0; j < kVecs; ++j) acc[j] = _mm512_setzero_ps();
  for (int32_t p = 0; p < n; ++p) {
    const __m512 a = _mm512_set1_ps(probs[p] * inv);
    const float* v = v_rows[p];
    for (int j = 0; j < kVecs; ++j) acc[j] = _mm512_fmadd_ps(a, _mm512_loadu_ps(v + 16 * j), acc[j]);
  }
  for (int j = 0; j < kVecs; ++j) _mm512_storeu_ps(out + 16 * j, acc[j]);
}

}  // namespace

void AttendAvx512(const float* q, const float* const* k_rows, const float* const* v_rows,
                  int32_t n, int head_dim, float scale, float* probs, float* out) {
  float max = -INFINITY;
  for (int32_t p = 0; p < n; ++p) {
    const float s = DotInline(q, k_rows[p], head_dim) * scale;
    probs[p] = s;
    max = s > max ? s : max;  // std::fmax's result (a NaN score is skipped by both), inline
  }
  double sum = 0.0;
  for (int32_t p = 0; p < n; ++p) {
    probs[p] = std::exp(probs[p] - max);
    sum += probs[p];
  }
  const float inv = static_cast<float>(1.0 / sum);
  switch (head_dim) {
    case 64:
      return WeightedSum<4>(probs, inv, v_rows, n, out);
    case 128:
      return WeightedSum<8>(probs, inv, v_rows, n, out);
    default:
      break;
  }
  std::memset(out, 0, sizeof(float) * head_dim);
  for (int32_t p = 0; p < n; ++p) AxpyAvx512(probs[p] * inv, v_rows[p], out, head_dim);
}

}  // namespace tessera::kernels::internal
