#include "kernels/cpu/quantize.h"

#include <cmath>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "kernels/dtype.h"

namespace tessera::kernels {
namespace {

// Round half to even in the default rounding mode, like the SIMD cvtps2dq
// llama.cpp uses; on x86 that instruction itself (baseline SSE), which the
// compiler will not emit for std::nearbyint without SSE4.1, calling libm instead.
inline int RoundToInt(float v) {
#if defined(__SSE__)
  return _mm_cvtss_si32(_mm_set_ss(v));
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}

}  // namespace

void QuantizeActivationRow(const float* x, int64_t cols, int8_t* q, float* d, float* s) {
  const int64_t nb = cols / kQuantBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQuantBlock;
    int8_t* qb = q + b * kQuantBlock;
    float amax = 0.0f;
    // Same result as std::fmax (amax is never NaN; a NaN input is skipped by
    // both), without its libm call.
    for (int j = 0; j < kQuantBlock; ++j) {
      const float a = std::fabs(xb[j]);
      amax = a > amax ? a : amax;
    }
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int v = RoundToInt(xb[j] * inv);
      qb[j] = static_cast<int8_t>(v);
      sum += v;
    }
    d[b] = F16ToF32(F32ToF16(scale));
    if (s != nullptr) s[b] = F16ToF32(F32ToF16(scale * static_cast<float>(sum)));
  }
}

}  // namespace tessera::kernels
