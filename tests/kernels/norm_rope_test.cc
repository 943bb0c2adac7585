// RmsNorm and Rope against float64 references (and against transcriptions of
// ggml's float recipes, which our numerics promise to follow).
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::IsaTest;
using testing::RandomVector;

class NormRopeTest : public IsaTest {};

TEST_P(NormRopeTest, RmsNormMatchesFloat64) {
  std::mt19937 rng(31);
  for (int64_t dim : {1, 7, 64, 576, 1001}) {
    const int64_t tokens = 5;
    std::vector<float> x = RandomVector(tokens * dim, rng, 3.0f);
    const std::vector<float> w = RandomVector(dim, rng);
    const float eps = 1e-5f;
    std::vector<float> y(x.size());
    RmsNorm(x.data(), w.data(), tokens, dim, eps, y.data());
    for (int64_t t = 0; t < tokens; ++t) {
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[t * dim + i]) * x[t * dim + i];
      const double inv = 1.0 / std::sqrt(ss / dim + static_cast<double>(eps));
      for (int64_t i = 0; i < dim; ++i) {
        const double ref = x[t * dim + i] * inv * w[i];
        // A handful of float roundings (mean, eps add, sqrt, divide, two
        // multiplies): 1e-6 relative is ~8 ulp of headroom.
        ASSERT_NEAR(y[t * dim + i], ref, 1e-6 * std::fabs(ref) + 1e-30) << dim << " " << i;
      }
    }
    // In place gives the same bits.
    std::vector<float> inplace = x;
    RmsNorm(inplace.data(), w.data(), tokens, dim, eps, inplace.data());
    EXPECT_EQ(std::memcmp(inplace.data(), y.data(), y.size() * sizeof(float)), 0);
  }
}

TEST_P(NormRopeTest, RmsNormFollowsGgmlRecipeExactly) {
  std::mt19937 rng(32);
  const int64_t dim = 576;
  std::vector<float> x = RandomVector(dim, rng, 0.2f);
  const std::vector<float> w = RandomVector(dim, rng);
  std::vector<float> y(dim);
  RmsNorm(x.data(), w.data(), 1, dim, 1e-5f, y.data());
  // ggml_compute_forward_rms_norm_f32 followed by ggml_mul.
  double sum = 0.0;
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / dim);
  const float scale = 1.0f / sqrtf(mean + 1e-5f);
  for (int64_t i = 0; i < dim; ++i) {
    const float scaled = x[i] * scale;
    ASSERT_EQ(y[i], scaled * w[i]) << i;
  }
}

struct RopeCase {
  int heads, head_dim, rot_dim;
  float base;
  bool factors;
  bool neox = false;  // pairs (i, i + rot_dim/2) instead of (2i, 2i+1)
};

// The ideal rotation, angles in double.
void RopeIdeal(const std::vector<float>& in, const std::vector<int32_t>& pos, const RopeCase& c,
               const std::vector<float>& ff, std::vector<double>* out, std::vector<double>* tol) {
  out->assign(in.begin(), in.end());
  tol->assign(in.size(), 0.0);
  for (size_t t = 0; t < pos.size(); ++t) {
    for (int h = 0; h < c.heads; ++h) {
      const size_t off = (t * c.heads + h) * c.head_dim;
      for (int i = 0; i < c.rot_dim / 2; ++i) {
        const double theta_i = std::pow(static_cast<double>(c.base), -2.0 * i / c.rot_dim) /
                               (c.factors ? ff[i] : 1.0);
        const double angle = pos[t] * theta_i;
        const size_t a = off + (c.neox ? i : 2 * i);
        const size_t b = c.neox ? a + c.rot_dim / 2 : a + 1;
        const double x0 = in[a], x1 = in[b];
        (*out)[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
        (*out)[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
        // ggml's float recurrence theta *= theta_scale: powf is within 1 ulp
        // (2^-23 relative) and each of the i multiplies adds 2^-24, so the
        // angle is off by at most angle * (i+2) * 2^-23; the rotation adds a
        // few float roundings on top.
        const double angle_err = std::fabs(angle) * (i + 2) * std::ldexp(1.0, -23);
        const double t_err = (std::fabs(x0) + std::fabs(x1)) * (angle_err + std::ldexp(1.0, -21));
        (*tol)[a] = t_err;
        (*tol)[b] = t_err;
      }
    }
  }
}

TEST_P(NormRopeTest, RopeMatchesFloat64AndLeavesUnrotatedDims) {
  std::mt19937 rng(33);
  for (const RopeCase& c : {RopeCase{9, 64, 64, 10000.0f, false}, RopeCase{3, 64, 32, 10000.0f, false},
                            RopeCase{2, 128, 128, 500000.0f, true}, RopeCase{4, 10, 6, 100.0f, true},
                            RopeCase{3, 64, 64, 1000000.0f, false, true},
                            RopeCase{2, 32, 16, 10000.0f, true, true}}) {
    const std::vector<int32_t> positions = {0, 1, 2, 17, 300, 4095, 8191};
    std::vector<float> ff(c.rot_dim / 2);
    for (auto& f : ff) f = std::uniform_real_distribution<float>(1.0f, 8.0f)(rng);
    const std::vector<float> x = RandomVector(positions.size() * c.heads * c.head_dim, rng);
    std::vector<float> y = x;
    RopeParams params;
    params.head_dim = c.head_dim;
    params.rot_dim = c.rot_dim;
    params.freq_base = c.base;
    params.freq_factors = c.factors ? ff.data() : nullptr;
    params.neox = c.neox;
    Rope(y.data(), positions.data(), positions.size(), c.heads, params);
    std::vector<double> ref, tol;
    RopeIdeal(x, positions, c, ff, &ref, &tol);
    for (size_t i = 0; i < y.size(); ++i) {
      const size_t d = i % c.head_dim;
      if (static_cast<int>(d) >= c.rot_dim) {
        ASSERT_EQ(y[i], x[i]) << "dim " << d << " must not rotate";
      } else {
        ASSERT_NEAR(y[i], ref[i], tol[i]) << "head_dim=" << c.head_dim << " i=" << i;
      }
    }
  }
}

TEST_P(NormRopeTest, RopeFollowsGgmlThetaRecurrence) {
  // Transcription of ggml_rope_cache_init (freq_scale = 1, ext_factor = 0,
  // mscale = 1) with cos/sin in double: the only difference left is cosf/sinf
  // rounding (< 1 ulp each).
  std::mt19937 rng(34);
  const int head_dim = 64, heads = 2;
  const std::vector<int32_t> positions = {3, 1000, 8000};
  const std::vector<float> x = RandomVector(positions.size() * heads * head_dim, rng);
  std::vector<float> y = x;
  RopeParams params;
  params.head_dim = head_dim;
  params.rot_dim = head_dim;
  params.freq_base = 10000.0f;
  Rope(y.data(), positions.data(), positions.size(), heads, params);
  const float theta_scale = powf(10000.0f, -2.0f / head_dim);
  for (size_t t = 0; t < positions.size(); ++t) {
    float theta = static_cast<float>(positions[t]);
    for (int i = 0; i < head_dim / 2; ++i) {
      for (int h = 0; h < heads; ++h) {
        const size_t off = (t * heads + h) * head_dim + 2 * i;
        const double x0 = x[off], x1 = x[off + 1];
        const double c = std::cos(static_cast<double>(theta));
        const double s = std::sin(static_cast<double>(theta));
        const double tol = (std::fabs(x0) + std::fabs(x1)) * std::ldexp(1.0, -21);
        ASSERT_NEAR(y[off], x0 * c - x1 * s, tol) << t << " " << i;
        ASSERT_NEAR(y[off + 1], x0 * s + x1 * c, tol) << t << " " << i;
      }
      theta *= theta_scale;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, NormRopeTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
