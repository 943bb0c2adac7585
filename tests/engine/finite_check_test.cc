// FirstNonFinite against std::isfinite, at every position around the scan's
// block boundaries, for NaN (quiet, signalling, negative), both infinities,
// and the finite extremes that must pass (max, lowest, denormals, -0).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/finite_check.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

int64_t Reference(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

TEST(FiniteCheckTest, FindsTheFirstNonFiniteValueAnywhere) {
  using L = std::numeric_limits<float>;
  const std::vector<float> finite_extremes = {L::max(), L::lowest(), L::denorm_min(), -0.0f,
                                              L::min(), FromBits(0x7f7fffffu)};
  const std::vector<float> bad = {L::quiet_NaN(), L::signaling_NaN(), -L::quiet_NaN(),
                                  L::infinity(), -L::infinity(), FromBits(0xffc00001u)};
  for (size_t n : {0u, 1u, 255u, 256u, 257u, 1000u}) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = finite_extremes[i % finite_extremes.size()];
    EXPECT_EQ(FirstNonFinite(v), -1) << n;
    for (size_t at : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{511}, n - 1}) {
      if (n == 0 || at >= n) continue;
      for (float b : bad) {
        std::vector<float> w = v;
        w[at] = b;
        if (at + 3 < n) w[at + 3] = L::infinity();  // a later one does not matter
        ASSERT_EQ(FirstNonFinite(w), Reference(w)) << "n " << n << " at " << at;
        EXPECT_EQ(FirstNonFinite(w), static_cast<int64_t>(at));
      }
    }
  }
}

}  // namespace
}  // namespace tessera
