#include "kernels/cpu/quantize.h"

#include <cmath>

#include "kernels/dtype.h"

namespace tessera::kernels {

void QuantizeActivationRow(const float* x, int64_t cols, int8_t* q, float* d, float* s) {
  const int64_t nb = cols / kQuantBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQuantBlock;
    int8_t* qb = q + b * kQuantBlock;
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      // nearbyint rounds half to even in the default rounding mode, like the
      // SIMD cvtps2dq llama.cpp uses.
      const int v = static_cast<int>(std::nearbyint(xb[j] * inv));
      qb[j] = static_cast<int8_t>(v);
      sum += v;
    }
    d[b] = F16ToF32(F32ToF16(scale));
    if (s != nullptr) s[b] = F16ToF32(F32ToF16(scale * static_cast<float>(sum)));
  }
}

}  // namespace tessera::kernels
