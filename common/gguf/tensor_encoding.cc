#include "common/gguf/tensor_encoding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace tessera {
namespace {

constexpr size_t kQBlock = 32;

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

void AppendU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void AppendU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Shifts `m` right by `shift` (1..31), rounding to nearest, ties to even.
uint32_t ShiftRoundEven(uint32_t m, unsigned shift) {
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((uint32_t{1} << shift) - 1);
  const uint32_t half = uint32_t{1} << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

}  // namespace

uint16_t FloatToF16Bits(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t x = u & 0x7fffffff;
  if (x >= 0x7f800000) {  // inf or NaN; keep NaN payload bits and make it quiet
    return sign | (x == 0x7f800000 ? 0x7c00 : (0x7e00 | ((x >> 13) & 0x3ff)));
  }
  // 65520 is the midpoint between 65504 (odd mantissa) and 2^16, so it and
  // everything above rounds to infinity.
  if (x >= 0x477ff000) return sign | 0x7c00;
  if (x < 0x38800000) {  // below 2^-14: a half subnormal (units of 2^-24) or 0
    const uint32_t exponent = x >> 23;
    if (exponent < 102) return sign;  // < 2^-25: rounds to zero
    const uint32_t mantissa = (x & 0x7fffff) | 0x800000;
    // value / 2^-24 = mantissa * 2^(exponent - 126)
    return sign | static_cast<uint16_t>(ShiftRoundEven(mantissa, 126 - exponent));
  }
  // Normal: rebias the exponent from 127 to 15 and round off 13 mantissa bits;
  // a carry out of the mantissa correctly bumps the exponent.
  const uint32_t rebased = (x >> 13) - (uint32_t{112} << 10);
  const uint32_t rem = x & 0x1fff;
  const uint32_t h = (rem > 0x1000 || (rem == 0x1000 && (rebased & 1))) ? rebased + 1 : rebased;
  return sign | static_cast<uint16_t>(h);
}

float F16BitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0) {
    // Subnormal or zero: mantissa * 2^-24 is exact in binary32.
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return BitsFloat(sign | 0x7f800000 | (mantissa << 13));
  return BitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t FloatToBF16Bits(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float BF16BitsToFloat(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

std::string EncodeF32(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 4);
  for (float v : values) AppendU32(&out, FloatBits(v));
  return out;
}

std::string EncodeF16(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, FloatToF16Bits(v));
  return out;
}

std::string EncodeBF16(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, FloatToBF16Bits(v));
  return out;
}

std::string EncodeQ8_0(const std::vector<float>& values) {
  if (values.size() % kQBlock != 0) return "";
  std::string out;
  out.reserve(values.size() / kQBlock * 34);
  for (size_t b = 0; b < values.size(); b += kQBlock) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(values[b + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    AppendU16(&out, FloatToF16Bits(d));
    for (size_t j = 0; j < kQBlock; ++j) {
      const float q = std::round(values[b + j] * id);  // |q| <= 127 by construction
      out.push_back(static_cast<char>(static_cast<int8_t>(q)));
    }
  }
  return out;
}

std::string EncodeQ4_1(const std::vector<float>& values) {
  if (values.size() % kQBlock != 0) return "";
  std::string out;
  out.reserve(values.size() / kQBlock * 20);
  for (size_t b = 0; b < values.size(); b += kQBlock) {
    float lo = std::numeric_limits<float>::max();
    float hi = -std::numeric_limits<float>::max();
    for (size_t j = 0; j < kQBlock; ++j) {
      lo = std::min(lo, values[b + j]);
      hi = std::max(hi, values[b + j]);
    }
    const float d = (hi - lo) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    AppendU16(&out, FloatToF16Bits(d));
    AppendU16(&out, FloatToF16Bits(lo));
    auto quantise = [&](float x) {
      const float scaled = (x - lo) * id + 0.5f;  // >= 0.5, so truncation rounds
      return static_cast<uint8_t>(std::clamp(static_cast<int>(scaled), 0, 15));
    };
    for (size_t j = 0; j < kQBlock / 2; ++j) {
      const uint8_t q0 = quantise(values[b + j]);
      const uint8_t q1 = quantise(values[b + j + kQBlock / 2]);
      out.push_back(static_cast<char>(q0 | (q1 << 4)));
    }
  }
  return out;
}

}  // namespace tessera
