#include "kernels/cpu/quantize.h"

#include <cmath>
#include <limits>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_internal.h"
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
#if defined(TESSERA_KERNELS_X86)
  if (ActiveIsa() == Isa::kAvx512) {
    // q, then each block's amax (NaN for a NaN block) in d and sum(q) in s;
    // the f16 roundings here.
    internal::QuantizeBlocksAvx512(x, nb, q, d, s);
    for (int64_t b = 0; b < nb; ++b) {
      const float amax = d[b];
      if (amax != amax) {
        if (s != nullptr) s[b] = amax;
        continue;
      }
      const float scale = amax / 127.0f;
      d[b] = F16ToF32(F32ToF16(scale));
      if (s != nullptr) s[b] = F16ToF32(F32ToF16(scale * s[b]));
    }
    return;
  }
#endif
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQuantBlock;
    int8_t* qb = q + b * kQuantBlock;
    float amax = 0.0f;
    bool nan = false;
    // Same result as std::fmax on numbers, without its libm call.
    for (int j = 0; j < kQuantBlock; ++j) {
      const float a = std::fabs(xb[j]);
      amax = a > amax ? a : amax;
      nan |= a != a;
    }
    if (nan) {
      // A NaN must reach the product, never become a plain int8 (which
      // would turn a numerical fault into finite, wrong logits). An
      // infinity does already: d = inf and every q = 0 give inf * 0 = NaN.
      for (int j = 0; j < kQuantBlock; ++j) qb[j] = 0;
      d[b] = std::numeric_limits<float>::quiet_NaN();
      if (s != nullptr) s[b] = d[b];
      continue;
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

void QuantizeActivationRowQ8K(const float* x, int64_t cols, int8_t* q, float* d,
                              int16_t* bsums) {
#if defined(TESSERA_KERNELS_X86)
  if (ActiveIsa() == Isa::kAvx512) return internal::QuantizeRowQ8KAvx512(x, cols, q, d, bsums);
#endif
  constexpr int kBlock = 256;
  for (int64_t b = 0; b < cols / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    int8_t* qb = q + b * kBlock;
    int16_t* sb = bsums + b * (kBlock / 16);
    // The signed extreme, not just its magnitude: iscale carries its sign so
    // that the extreme itself maps to -127 exactly.
    float amax = 0.0f;
    float max = 0.0f;
    bool finite = true;
    for (int j = 0; j < kBlock; ++j) {
      const float a = std::fabs(xb[j]);
      if (a > amax) {
        amax = a;
        max = xb[j];
      }
      finite &= a <= std::numeric_limits<float>::max();
    }
    if (!finite) {
      // NaN or infinity: make the product NaN rather than finite and wrong.
      d[b] = std::numeric_limits<float>::quiet_NaN();
      for (int j = 0; j < kBlock; ++j) qb[j] = 0;
      for (int j = 0; j < kBlock / 16; ++j) sb[j] = 0;
      continue;
    }
    if (amax == 0.0f) {
      d[b] = 0.0f;
      for (int j = 0; j < kBlock; ++j) qb[j] = 0;
      for (int j = 0; j < kBlock / 16; ++j) sb[j] = 0;
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kBlock; ++j) {
      const int v = RoundToInt(iscale * xb[j]);
      qb[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < kBlock / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += qb[16 * j + l];
      sb[j] = static_cast<int16_t>(sum);
    }
    d[b] = 1.0f / iscale;
  }
}

}  // namespace tessera::kernels
