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

void AppendU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void AppendU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string EncodeF32(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 4);
  for (float v : values) AppendU32(&out, FloatBits(v));
  return out;
}

std::string EncodeF16(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, F32ToF16(v));
  return out;
}

std::string EncodeBF16(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, F32ToBF16(v));
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
    AppendU16(&out, F32ToF16(d));
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
    AppendU16(&out, F32ToF16(d));
    AppendU16(&out, F32ToF16(lo));
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
