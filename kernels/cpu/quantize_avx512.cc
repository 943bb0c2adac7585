// AVX-512 halves of quantize.cc's activation quantisation (compiled with the
// AVX-512 flags, called only when cpu/isa.cc found them). Each operation is
// the scalar code's, exactly rounded, so the bits are the scalar code's:
// maxima of absolute values are exact, x * inv is one IEEE multiply,
// cvtps2dq rounds half to even in the default mode as the scalar code's
// cvtss2si does, and integer sums are exact. Only intrinsics here: no inline
// function that a baseline file also instantiates (matmul_internal.h).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/matmul_internal.h"

namespace tessera::kernels::internal {

void QuantizeBlocksAvx512(const float* x, int64_t nb, int8_t* q, float* amax_out,
                          float* sum_out) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b);
    const __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
    int8_t* qb = q + 32 * b;
    const __mmask16 nan = _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
    if (nan != 0) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb), _mm256_setzero_si256());
      amax_out[b] = __builtin_nanf("");
      if (sum_out != nullptr) sum_out[b] = 0.0f;
      continue;
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
    const __m512 inv = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), _mm512_cvtepi32_epi8(q1));
    amax_out[b] = amax;
    if (sum_out != nullptr) sum_out[b] = static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)));
  }
}

void QuantizeRowQ8KAvx512(const float* x, int64_t cols, int8_t* q, float* d, int16_t* bsums) {
  constexpr int kBlock = 256;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const __m512 huge = _mm512_set1_ps(3.40282347e+38f);  // FLT_MAX
  const __m512i k127 = _mm512_set1_epi32(127);
  for (int64_t b = 0; b < cols / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    int8_t* qb = q + b * kBlock;
    int16_t* sb = bsums + b * (kBlock / 16);
    __m512 vmax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int i = 0; i < kBlock; i += 16) {
      const __m512 a = _mm512_and_ps(_mm512_loadu_ps(xb + i), abs_mask);
      bad |= _mm512_cmp_ps_mask(a, huge, _CMP_NLE_UQ);  // NaN or infinity
      vmax = _mm512_max_ps(vmax, a);
    }
    if (bad != 0 || _mm512_reduce_max_ps(vmax) == 0.0f) {
      d[b] = bad != 0 ? __builtin_nanf("") : 0.0f;
      for (int i = 0; i < kBlock; i += 64) _mm512_storeu_si512(qb + i, _mm512_setzero_si512());
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sb), _mm256_setzero_si256());
      continue;
    }
    // The first value of largest magnitude, sign kept (the scalar `a > amax`).
    const float amax = _mm512_reduce_max_ps(vmax);
    const __m512 vamax = _mm512_set1_ps(amax);
    float max = 0.0f;
    for (int i = 0; i < kBlock; i += 16) {
      const __m512 v = _mm512_loadu_ps(xb + i);
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(v, abs_mask), vamax, _CMP_EQ_OQ);
      if (hit != 0) {
        max = xb[i + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 vis = _mm512_set1_ps(iscale);
    for (int i = 0; i < kBlock; i += 16) {
      const __m512i v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vis, _mm512_loadu_ps(xb + i))), k127);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + i), _mm512_cvtepi32_epi8(v));
      sb[i / 16] = static_cast<int16_t>(_mm512_reduce_add_epi32(v));
    }
    d[b] = 1.0f / iscale;
  }
}

}  // namespace tessera::kernels::internal
