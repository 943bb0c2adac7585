// Encoders checked against float64 references written independently here:
// half decoding via ldexp, rounding checked as "no representable neighbour is
// nearer", and dequantisation in double with error bounds derived from each
// block's scale. The quantised bytes are also compared with golden output of
// gguf-py's (numpy) quantisers.
#include "common/gguf/tensor_encoding.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

// Largest error of storing v (first computed in float) as f16: half an f16
// ulp, which is 2^-11 relative in the normal range and 2^-25 absolute among
// subnormals, plus the float rounding of v itself.
double F16Error(double v) {
  return std::max(std::fabs(v) * std::ldexp(1.0, -11), std::ldexp(1.0, -25)) +
         std::fabs(v) * std::ldexp(1.0, -22);
}

double HalfToDouble(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) {
    v = std::ldexp(m, -24);
  } else if (e == 31) {
    v = m != 0 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(1024 + m, e - 25);
  }
  return (h & 0x8000) ? -v : v;
}

uint16_t U16At(const std::string& b, size_t pos) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[pos]) |
                               (static_cast<uint8_t>(b[pos + 1]) << 8));
}

std::string Hex(const std::string& b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

TEST(HalfTest, DecodesEveryPatternLikeTheDoubleReference) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double ref = HalfToDouble(static_cast<uint16_t>(h));
    const float got = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), ref) << "pattern " << h;
      ASSERT_EQ(std::signbit(got), std::signbit(ref)) << "pattern " << h;
    }
  }
}

TEST(HalfTest, EncodesEveryRepresentableValueExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double v = HalfToDouble(static_cast<uint16_t>(h));
    if (std::isnan(v)) continue;
    ASSERT_EQ(F32ToF16(static_cast<float>(v)), h) << "value " << v;
  }
}

TEST(HalfTest, RoundsToNearestEvenBetweenEveryPairOfNeighbours) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7bff; ++h) {
      const double lo = HalfToDouble(static_cast<uint16_t>(h | sign));
      const double hi = HalfToDouble(static_cast<uint16_t>((h + 1) | sign));
      const float mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
      ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
      const uint32_t even = (h & 1) ? h + 1 : h;
      ASSERT_EQ(F32ToF16(mid), even | sign) << "tie at " << mid;
      ASSERT_EQ(F32ToF16(std::nextafter(mid, static_cast<float>(hi))), (h + 1) | sign) << mid;
      ASSERT_EQ(F32ToF16(std::nextafter(mid, static_cast<float>(lo))), h | sign) << mid;
    }
  }
}

TEST(HalfTest, OverflowUnderflowAndNaN) {
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // the tie rounds to even = infinity
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie with 2^-24: even is 0
  EXPECT_EQ(F32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(F32ToF16(1e-30f), 0x0000);
  EXPECT_EQ(F32ToF16(-1e-30f), 0x8000);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  const uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A signalling NaN whose payload lives only in the low bits must stay NaN.
  uint32_t snan_bits = 0x7f800001;
  float snan;
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_NE(F32ToF16(snan) & 0x03ff, 0);
}

// bfloat16 of x must be a neighbour of x no farther than the other one, with
// ties going to the even pattern.
TEST(BFloat16Test, RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t u = bits(rng);
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;  // force exact ties often
    float x;
    std::memcpy(&x, &u, 4);
    if (!std::isfinite(x)) continue;
    const uint32_t down = u & 0xffff0000u;  // toward zero
    const uint32_t up = down + 0x10000u;    // away from zero (may be infinity)
    auto as_double = [](uint32_t b) {
      if ((b & 0x7fffffffu) == 0x7f800000u)
        return std::copysign(std::ldexp(1.0, 128), b >> 31 ? -1.0 : 1.0);
      float f;
      std::memcpy(&f, &b, 4);
      return static_cast<double>(f);
    };
    const double dd = std::fabs(x - as_double(down)), du = std::fabs(as_double(up) - x);
    const uint32_t expected = dd < du ? down : du < dd ? up : (((down >> 16) & 1) ? up : down);
    ASSERT_EQ(F32ToBF16(x), expected >> 16) << "x = " << x;
    const float back = BF16ToF32(static_cast<uint16_t>(expected >> 16));
    uint32_t back_bits;
    std::memcpy(&back_bits, &back, 4);
    ASSERT_EQ(back_bits, expected) << x;
    ++checked;
  }
  EXPECT_GT(checked, 1900000);
  const uint16_t nan = F32ToBF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(BF16ToF32(nan)));
}

TEST(EncodeTest, PlainFloatByteLayouts) {
  EXPECT_EQ(Hex(EncodeF32({1.0f, -2.0f})), "0000803f000000c0");
  EXPECT_EQ(Hex(EncodeF16({1.0f, -2.0f, 0.5f})), "003c00c00038");
  EXPECT_EQ(Hex(EncodeBF16({1.0f, -2.0f, 3.140625f})), "803f00c04940");
}

TEST(EncodeTest, BlockFormatsNeedWholeBlocks) {
  EXPECT_EQ(EncodeQ8_0(std::vector<float>(33, 1.0f)), "");
  EXPECT_EQ(EncodeQ4_1(std::vector<float>(31, 1.0f)), "");
  EXPECT_EQ(EncodeQ8_0({}), "");
}

std::vector<std::vector<float>> TestVectors() {
  std::vector<std::vector<float>> out;
  for (float scale : {1e-4f, 0.02f, 1.0f, 300.0f}) {
    out.push_back(testing::RandomValues(32 * 64, 11 + static_cast<uint32_t>(scale * 10), scale));
  }
  std::vector<float> outliers = testing::RandomValues(32 * 16, 5, 0.1f);
  for (size_t i = 3; i < outliers.size(); i += 32) outliers[i] = 40.0f;  // one per block
  out.push_back(outliers);
  std::vector<float> positive(64);
  for (size_t i = 0; i < positive.size(); ++i) positive[i] = 2.0f + 0.01f * static_cast<float>(i);
  out.push_back(positive);
  out.push_back(std::vector<float>(32, 0.0f));
  out.push_back(std::vector<float>(32, -3.5f));
  return out;
}

TEST(EncodeTest, Q8_0DequantisesWithinHalfAStep) {
  for (const std::vector<float>& x : TestVectors()) {
    const std::string b = EncodeQ8_0(x);
    ASSERT_EQ(b.size(), x.size() / 32 * 34);
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      const size_t base = blk * 34;
      double amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double{x[blk * 32 + j]}));
      const double d = amax / 127;
      const double d16 = HalfToDouble(U16At(b, base));
      ASSERT_LE(std::fabs(d16 - d), F16Error(d)) << "block " << blk;
      const double tol = 0.5 * d + 127 * std::fabs(d - d16) + 1e-6 * amax;
      for (int j = 0; j < 32; ++j) {
        const double xv = x[blk * 32 + j];
        const int q = static_cast<int8_t>(b[base + 2 + j]);
        ASSERT_LE(std::abs(q), 127);
        EXPECT_LE(std::fabs(xv - q * d16), tol) << "block " << blk << " element " << j;
        if (d > 0) {
          const double exact = xv / d;
          if (std::fabs(std::fabs(exact - std::trunc(exact)) - 0.5) > 1e-3) {
            EXPECT_EQ(q, std::lround(exact)) << "block " << blk << " element " << j;
          }
          if (std::fabs(xv) == amax) {
            EXPECT_EQ(std::abs(q), 127);
          }
        } else {
          EXPECT_EQ(q, 0);
        }
      }
    }
  }
}

TEST(EncodeTest, Q4_1DequantisesWithinHalfAStep) {
  for (const std::vector<float>& x : TestVectors()) {
    const std::string b = EncodeQ4_1(x);
    ASSERT_EQ(b.size(), x.size() / 32 * 20);
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      const size_t base = blk * 20;
      double lo = 1e300, hi = -1e300;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, double{x[blk * 32 + j]});
        hi = std::max(hi, double{x[blk * 32 + j]});
      }
      const double d = (hi - lo) / 15;
      const double d16 = HalfToDouble(U16At(b, base));
      const double m16 = HalfToDouble(U16At(b, base + 2));
      ASSERT_LE(std::fabs(d16 - d), F16Error(d)) << "block " << blk;
      ASSERT_LE(std::fabs(m16 - lo), F16Error(lo)) << "block " << blk;
      const double tol =
          0.5 * d + 15 * std::fabs(d - d16) + std::fabs(lo - m16) + 1e-6 * (hi - lo) + 1e-12;
      for (int j = 0; j < 32; ++j) {
        const uint8_t byte = static_cast<uint8_t>(b[base + 4 + (j % 16)]);
        const int q = j < 16 ? (byte & 15) : (byte >> 4);
        const double xv = x[blk * 32 + j];
        EXPECT_LE(std::fabs(xv - (q * d16 + m16)), tol) << "block " << blk << " element " << j;
        if (d > 0) {
          const double exact = (xv - lo) / d;
          if (std::fabs(exact - std::floor(exact) - 0.5) > 1e-3) {
            EXPECT_EQ(q, std::min(15L, static_cast<long>(std::floor(exact + 0.5))));
          }
        } else {
          EXPECT_EQ(q, 0);
        }
      }
    }
  }
}

// The input scripts/golden/gen_gguf_golden.py gives gguf-py: 64 values
// ((i * 7919) % 1000 - 500) / 137 in float32, then a zero block, then a
// constant block of 1.25.
std::vector<float> GoldenInput() {
  std::vector<float> x;
  for (int i = 0; i < 64; ++i) {
    x.push_back(static_cast<float>((i * 7919) % 1000 - 500) / 137.0f);
  }
  x.insert(x.end(), 32, 0.0f);
  x.insert(x.end(), 32, 1.25f);
  return x;
}

// tests/golden/tensor_encoding.json: gguf-py's quants.quantize() and
// numpy's float16 of GoldenInput() (scripts/golden/gen_gguf_golden.py).
nlohmann::json EncodingGolden() {
  std::ifstream in(testing::GoldenPath("tensor_encoding.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(j.is_object()) << "tests/golden/tensor_encoding.json is missing or invalid";
  return j.is_object() ? j : nlohmann::json::object();
}

TEST(EncodeTest, Q8_0MatchesGgufPyGolden) {
  EXPECT_EQ(Hex(EncodeQ8_0(GoldenInput())), EncodingGolden().value("q8_0_hex", "<missing>"));
}

TEST(EncodeTest, Q4_1MatchesGgufPyGolden) {
  EXPECT_EQ(Hex(EncodeQ4_1(GoldenInput())), EncodingGolden().value("q4_1_hex", "<missing>"));
}

TEST(EncodeTest, F16MatchesNumpyGolden) {
  std::vector<float> x = GoldenInput();
  x.resize(16);
  EXPECT_EQ(Hex(EncodeF16(x)), EncodingGolden().value("f16_first16_hex", "<missing>"));
}

}  // namespace
}  // namespace tessera
