// Half and bfloat16 conversions: plain integer code (no F16C) so that every
// ISA path and every caller sees the same bits.
#include "base/half.h"

#include <cstring>

namespace tessera {
namespace {

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float mag = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return BitsFloat(FloatBits(mag) | sign);
  }
  if (exp == 31) {
    // Inf, or NaN made quiet as the F16C instructions do, so that every ISA
    // widens every bit pattern alike.
    const uint32_t quiet = mant != 0 ? 0x00400000u : 0u;
    return BitsFloat(sign | 0x7F800000u | quiet | (mant << 13));
  }
  return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t F32ToF16(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) {  // Inf or NaN; NaNs stay NaN (quiet).
    if (a == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  }
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to Inf.
  if (a < 0x38800000u) {
    // Below the smallest normal half: adding 0.5 (whose ulp is 2^-24, the
    // half subnormal step) lets the FPU round to nearest even for us.
    const float sum = BitsFloat(a) + 0.5f;
    return static_cast<uint16_t>(sign | (FloatBits(sum) - 0x3F000000u));
  }
  const uint32_t r = a - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rounded = (r + 0xFFFu + ((r >> 13) & 1u)) >> 13;
  return static_cast<uint16_t>(sign | rounded);
}

float BF16ToF32(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

uint16_t F32ToBF16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace tessera
