#include "kernels/dtype.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::Bf16BitsToDouble;
using testing::HalfBitsToDouble;
using testing::RoundToBf16;
using testing::RoundToHalf;

float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DTypeTest, BlockGeometryMatchesGgml) {
  EXPECT_EQ(BlockSize(DType::kF32), 1);
  EXPECT_EQ(BlockSize(DType::kQ8_0), 32);
  EXPECT_EQ(BlockSize(DType::kQ4_1), 32);
  EXPECT_EQ(BlockBytes(DType::kQ8_0), 34u);
  EXPECT_EQ(BlockBytes(DType::kQ4_1), 20u);
  EXPECT_EQ(RowBytes(DType::kF32, 7), 28u);
  EXPECT_EQ(RowBytes(DType::kF16, 7), 14u);
  EXPECT_EQ(RowBytes(DType::kBF16, 9), 18u);
  EXPECT_EQ(RowBytes(DType::kQ8_0, 576), 18u * 34u);
  EXPECT_EQ(RowBytes(DType::kQ4_1, 1536), 48u * 20u);
  EXPECT_STREQ(DTypeName(DType::kQ4_1), "Q4_1");
}

TEST(DTypeTest, F16ToF32DecodesEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = F16ToF32(static_cast<uint16_t>(h));
    const double want = HalfBitsToDouble(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << "half bits " << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << h;
    }
  }
}

TEST(DTypeTest, BF16ToF32DecodesEveryValueExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = Bf16BitsToDouble(static_cast<uint16_t>(h));
    const float got = BF16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << h;
    }
  }
}

std::vector<float> InterestingFloats() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, 70000.0f,
                          6.1035156e-05f, 6.0e-05f, 5.9604645e-08f, 2.9802322e-08f,
                          2.9802326e-08f, 1e-10f, INFINITY, -INFINITY, 1e30f, 3.14159265f};
  // Exact ties between adjacent halves, at several exponents and for both
  // parities of the lower neighbour, plus their float neighbours.
  for (int e = -24; e < 16; ++e) {
    for (int m : {0, 1, 2, 3, 1022, 1023}) {
      const double base = e < -14 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 10);
      const double ulp = e < -14 ? std::ldexp(1.0, -24) : std::ldexp(1.0, e - 10);
      const float tie = static_cast<float>(base + ulp / 2);
      v.push_back(tie);
      v.push_back(std::nextafter(tie, 0.0f));
      v.push_back(std::nextafter(tie, INFINITY));
      v.push_back(-tie);
    }
  }
  return v;
}

TEST(DTypeTest, F32ToF16RoundsToNearestEven) {
  std::vector<float> values = InterestingFloats();
  std::mt19937 rng(1);
  for (int i = 0; i < 200000; ++i) {
    // Random floats spanning the half range and a bit beyond, both signs.
    const uint32_t exp = 100 + rng() % 45;
    values.push_back(BitsToFloat((rng() & 0x80000000u) | (exp << 23) | (rng() & 0x7FFFFF)));
  }
  for (float f : values) {
    const double want = RoundToHalf(f);
    const double got = HalfBitsToDouble(F32ToF16(f));
    ASSERT_EQ(got, want) << "f=" << f;
    if (want == 0) {
      ASSERT_EQ(std::signbit(got), std::signbit(f)) << f;
    }
  }
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(NAN))));
}

TEST(DTypeTest, F32ToBF16RoundsToNearestEven) {
  std::vector<float> values = InterestingFloats();
  std::mt19937 rng(2);
  for (int i = 0; i < 200000; ++i) values.push_back(BitsToFloat(rng()));
  values.push_back(BitsToFloat(0x7F7FFFFFu));  // FLT_MAX rounds up to inf
  values.push_back(BitsToFloat(0x00008000u));  // subnormal tie
  values.push_back(BitsToFloat(0x00018000u));
  for (float f : values) {
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(f))));
      continue;
    }
    ASSERT_EQ(Bf16BitsToDouble(F32ToBF16(f)), RoundToBf16(f)) << "f=" << f;
  }
}

}  // namespace
}  // namespace tessera::kernels
