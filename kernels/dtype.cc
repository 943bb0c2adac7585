// Block geometry and scalar half/bfloat16 conversions. The conversions are
// plain integer code (no F16C) so that every ISA path and every test sees the
// same bits.
#include "kernels/dtype.h"

#include <cstring>

namespace tessera::kernels {
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

int BlockSize(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_1:
    case DType::kQ4_0:
      return 32;
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return kSuperBlock;
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return 1;
  }
  return 1;
}

size_t BlockBytes(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_1:
      return 20;
    case DType::kQ4_0:
      return 18;
    case DType::kQ4_K:
      return 144;
    case DType::kQ5_K:
      return 176;
    case DType::kQ6_K:
      return 210;
  }
  return 0;
}

bool IsKQuant(DType t) {
  return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K;
}

size_t RowBytes(DType t, int64_t n) {
  return static_cast<size_t>(n / BlockSize(t)) * BlockBytes(t);
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_0:
      return "Q8_0";
    case DType::kQ4_1:
      return "Q4_1";
    case DType::kQ4_0:
      return "Q4_0";
    case DType::kQ4_K:
      return "Q4_K";
    case DType::kQ5_K:
      return "Q5_K";
    case DType::kQ6_K:
      return "Q6_K";
  }
  return "unknown";
}

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

}  // namespace tessera::kernels
