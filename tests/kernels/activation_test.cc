#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::IsaTest;
using testing::RandomVector;

class ActivationTest : public IsaTest {};

TEST_P(ActivationTest, SwiGluMatchesFloat64) {
  std::mt19937 rng(41);
  std::vector<float> gate = RandomVector(1537, rng, 4.0f);
  gate[0] = 0.0f;
  gate[1] = -80.0f;  // exp(80) overflows nothing in float: 5.5e34
  gate[2] = 30.0f;
  const std::vector<float> up = RandomVector(gate.size(), rng);
  std::vector<float> out(gate.size());
  SwiGlu(gate.data(), up.data(), gate.size(), out.data());
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i];
    const double ref = g / (1.0 + std::exp(-g)) * up[i];
    ASSERT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-37) << "g=" << g;
  }
}

TEST_P(ActivationTest, SoftmaxMatchesFloat64) {
  std::mt19937 rng(42);
  for (int64_t n : {1, 2, 9, 100, 49152}) {
    std::vector<float> x = RandomVector(n, rng, 5.0f);
    x[0] += 50.0f;  // needs the max subtraction
    std::vector<float> y = x;
    Softmax(y.data(), n);
    double max = -INFINITY;
    for (float v : x) max = std::fmax(max, v);
    double sum = 0;
    for (float v : x) sum += std::exp(v - max);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(x[i] - max) / sum;
      // x - max is one float subtraction: its rounding (2^-24 of |x - max|)
      // becomes a relative error of exp(); plus a few ulp for exp and scaling.
      const double rel = std::ldexp(std::fabs(x[i] - max), -24) + 1e-6;
      ASSERT_NEAR(y[i], ref, rel * ref + 1e-38) << "n=" << n << " i=" << i;
      total += y[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST_P(ActivationTest, AddIsElementwiseSum) {
  std::vector<float> x = {1.5f, -2.0f, 1e-30f, 3.0f};
  std::vector<float> y = {0.25f, 2.0f, 1.0f, -3.0f};
  Add(x.data(), x.size(), y.data());
  EXPECT_EQ(y, (std::vector<float>{1.75f, 0.0f, 1.0f, 0.0f}));
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ActivationTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
