// MatMul and DequantizeRow against float64 references, for every weight
// format, on every ISA this CPU supports.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/quantize.h"
#include "kernels/dtype.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::HalfBitsToDouble;
using testing::IsaTest;
using testing::OwnedWeights;
using testing::RandomVector;
using testing::RandomWeights;
using testing::RoundToHalf;
using testing::WeightRef;

constexpr DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr DType kBlockTypes[] = {DType::kQ8_0, DType::kQ4_1};

// Activations with the features quantisation must survive: normal values,
// a large outlier per token, an all-zero block and an exactly representable
// tie (x*127/amax = k + 0.5).
std::vector<float> Activations(int64_t tokens, int64_t cols, std::mt19937& rng) {
  std::vector<float> x = RandomVector(tokens * cols, rng, 1.0f);
  for (int64_t t = 0; t < tokens; ++t) {
    float* xt = x.data() + t * cols;
    xt[(t * 13) % cols] = 25.0f * (t % 2 ? -1.0f : 1.0f);
    if (cols >= 64 && t % 3 == 1) std::fill(xt + 32, xt + 64, 0.0f);
    if (cols >= 32 && t % 3 == 2) {
      xt[0] = 127.0f;  // amax of block 0
      xt[1] = 2.5f;    // quantises to exactly 2.5 -> ties to even 2
      xt[2] = -3.5f;   // -> -4
      for (int j = 3; j < 32; ++j) xt[j] = std::clamp(xt[j], -100.0f, 100.0f);
    }
  }
  return x;
}

std::vector<float> RunMatMul(const WeightMatrix& w, const std::vector<float>& x, int64_t tokens,
                             ThreadPool* pool = nullptr) {
  std::vector<float> y(tokens * w.rows, NAN);
  MatMul(w, x.data(), tokens, y.data(), pool);
  return y;
}

// Independent transcription of the activation quantisation spec (see
// kernels/cpu/quantize.h) in double where it can be.
struct QuantBlockRef {
  int q[32];
  double d16;   // the scale the kernel multiplies by (f16-rounded)
  double s16;   // f16(d * sum q), Q8_1 only
  double d;     // amax / 127 before f16 rounding
};

QuantBlockRef QuantizeBlockRef(const float* x) {
  QuantBlockRef r;
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    const float v = x[j] * inv;
    // Round half to even, written out rather than via the FPU mode.
    double fl = std::floor(static_cast<double>(v));
    const double frac = v - fl;
    if (frac > 0.5 || (frac == 0.5 && std::fmod(fl, 2.0) != 0)) fl += 1;
    r.q[j] = static_cast<int>(fl);
    sum += r.q[j];
  }
  r.d = d;
  r.d16 = RoundToHalf(d);
  r.s16 = RoundToHalf(static_cast<double>(d * static_cast<float>(sum)));
  return r;
}

double LoadHalfBlock(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfBitsToDouble(h);
}

// y[t][o] from the emulated quantised activations, in double; also returns the
// magnitude sum of the terms to scale the tolerance.
void QuantizedRef(const WeightMatrix& w, const float* xt, int64_t o, double* value,
                  double* magnitude) {
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + o * w.row_bytes;
  double sum = 0, mag = 0;
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const QuantBlockRef qb = QuantizeBlockRef(xt + 32 * b);
    if (w.dtype == DType::kQ8_0) {
      const uint8_t* blk = row + 34 * b;
      const double dw = LoadHalfBlock(blk);
      int64_t isum = 0, iabs = 0;
      for (int j = 0; j < 32; ++j) {
        const int wq = static_cast<int8_t>(blk[2 + j]);
        isum += wq * qb.q[j];
        iabs += std::abs(wq * qb.q[j]);
      }
      sum += dw * qb.d16 * isum;
      mag += std::fabs(dw * qb.d16) * iabs;
    } else {
      const uint8_t* blk = row + 20 * b;
      const double dw = LoadHalfBlock(blk);
      const double mw = LoadHalfBlock(blk + 2);
      int64_t isum = 0, iabs = 0;
      for (int j = 0; j < 32; ++j) {
        const int wq = j < 16 ? (blk[4 + j] & 0x0F) : (blk[4 + j - 16] >> 4);
        isum += wq * qb.q[j];
        iabs += std::abs(wq * qb.q[j]);
      }
      sum += dw * qb.d16 * isum + mw * qb.s16;
      mag += std::fabs(dw * qb.d16) * iabs + std::fabs(mw * qb.s16);
    }
  }
  *value = sum;
  *magnitude = mag;
}

// Bound on |y_quantised - y_exact| for one output, from the quantisation step
// sizes. Per element, |x - d16*q| <= 0.5*d (rounding to the int8 grid,
// plus ~1e-5*d for the float computation of x*127/amax) + 127*|d - d16| (the
// f16 rounding of the scale). For Q4_1 the minimum term uses s16 instead of
// sum(x): |sum(x) - s16| <= 32*0.5001*d + |d*sum(q) - s16| where the latter
// is at most 2^-11 relative to |s| (or 2^-25 absolute if s16 is subnormal).
double QuantisationBound(const WeightMatrix& w, const float* xt, int64_t o) {
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + o * w.row_bytes;
  double bound = 0;
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const QuantBlockRef qb = QuantizeBlockRef(xt + 32 * b);
    const double step = 0.5001 * qb.d + 127.0 * std::fabs(qb.d - qb.d16);
    if (w.dtype == DType::kQ8_0) {
      const uint8_t* blk = row + 34 * b;
      const double dw = std::fabs(LoadHalfBlock(blk));
      for (int j = 0; j < 32; ++j) bound += dw * std::abs(static_cast<int8_t>(blk[2 + j])) * step;
    } else {
      const uint8_t* blk = row + 20 * b;
      const double dw = LoadHalfBlock(blk);
      const double mw = std::fabs(LoadHalfBlock(blk + 2));
      double xabs = 0;
      for (int j = 0; j < 32; ++j) {
        const int wq = j < 16 ? (blk[4 + j] & 0x0F) : (blk[4 + j - 16] >> 4);
        bound += dw * wq * step;
        xabs += std::fabs(xt[32 * b + j]);
      }
      const double s_err = std::ldexp(xabs + 16 * qb.d, -11) + std::ldexp(1.0, -25);
      bound += mw * (32 * 0.5001 * qb.d + s_err);
    }
  }
  return bound;
}

class MatMulTest : public IsaTest {};

TEST_P(MatMulTest, FloatFormatsMatchFloat64) {
  std::mt19937 rng(11);
  for (DType dtype : kFloatTypes) {
    for (int64_t rows : {1, 3, 17, 63}) {
      for (int64_t cols : {1, 7, 15, 17, 31, 33, 47, 63, 65, 129, 577}) {
        const int64_t tokens = 1 + rng() % 9;
        OwnedWeights ow = RandomWeights(dtype, rows, cols, rng, rows % 2 ? 6 : 0);
        const std::vector<float> x = Activations(tokens, cols, rng);
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < rows; ++o) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              const double p = WeightRef(ow.w, o, i) * x[t * cols + i];
              ref += p;
              mag += std::fabs(p);
            }
            // f32 accumulation of <= 577 products: well under 1e-5 relative
            // to the magnitude sum for any fixed summation order.
            ASSERT_NEAR(y[t * rows + o], ref, 1e-5 * mag + 1e-30)
                << DTypeName(dtype) << " rows=" << rows << " cols=" << cols << " t=" << t
                << " o=" << o;
          }
        }
      }
    }
  }
}

TEST_P(MatMulTest, BlockFormatsMatchEmulatedQuantisation) {
  std::mt19937 rng(12);
  for (DType dtype : kBlockTypes) {
    for (int64_t rows : {1, 3, 17, 63}) {
      for (int64_t k : {1, 2, 3, 5, 7, 9, 18, 19}) {
        const int64_t cols = 32 * k;
        const int64_t tokens = 1 + rng() % 9;
        OwnedWeights ow = RandomWeights(dtype, rows, cols, rng, rows % 2 ? 6 : 0);
        const std::vector<float> x = Activations(tokens, cols, rng);
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < rows; ++o) {
            double ref, mag;
            QuantizedRef(ow.w, x.data() + t * cols, o, &ref, &mag);
            ASSERT_NEAR(y[t * rows + o], ref, 1e-5 * mag + 1e-30)
                << DTypeName(dtype) << " rows=" << rows << " cols=" << cols << " t=" << t
                << " o=" << o;
          }
        }
      }
    }
  }
}

TEST_P(MatMulTest, BlockFormatsMatchUnquantisedFloat64WithinStepBound) {
  std::mt19937 rng(13);
  for (DType dtype : kBlockTypes) {
    for (int64_t rows : {1, 17}) {
      for (int64_t k : {1, 3, 18}) {
        const int64_t cols = 32 * k;
        const int64_t tokens = 1 + rng() % 9;
        OwnedWeights ow = RandomWeights(dtype, rows, cols, rng);
        const std::vector<float> x = Activations(tokens, cols, rng);
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        double worst_ratio = 0;
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < rows; ++o) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              const double p = WeightRef(ow.w, o, i) * x[t * cols + i];
              ref += p;
              mag += std::fabs(p);
            }
            const double bound = QuantisationBound(ow.w, x.data() + t * cols, o) + 1e-5 * mag;
            ASSERT_NEAR(y[t * rows + o], ref, bound)
                << DTypeName(dtype) << " cols=" << cols << " t=" << t << " o=" << o;
            worst_ratio = std::max(worst_ratio, std::fabs(y[t * rows + o] - ref) / bound);
          }
        }
        // The bound must not be vacuous: quantisation error is real and shows.
        EXPECT_GT(worst_ratio, 1e-3) << DTypeName(dtype) << " cols=" << cols;
      }
    }
  }
}

// A NaN or infinity in a token's activations makes that token's outputs
// NaN (or infinite) for every weight type, including the quantised ones,
// whose 8-bit activation quantisation must not turn it into plain numbers;
// the other tokens' outputs stay finite. 16 tokens take the tiled path too.
TEST_P(MatMulTest, NonFiniteActivationsNeverComeOutFinite) {
  std::mt19937 rng(91);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    const int64_t cols = 128;
    OwnedWeights ow = RandomWeights(dtype, 9, cols, rng);
    for (int64_t tokens : {1, 16}) {
      for (float bad : {NAN, INFINITY, -INFINITY}) {
        std::vector<float> x = Activations(tokens, cols, rng);
        const int64_t poisoned = tokens - 1;
        x[poisoned * cols + 37] = bad;
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < ow.w.rows; ++o) {
            EXPECT_EQ(std::isfinite(y[t * ow.w.rows + o]), t != poisoned)
                << DTypeName(dtype) << " tokens " << tokens << " token " << t << " row " << o
                << " value " << bad;
          }
        }
      }
    }
  }
}

class MatMulSimdTest : public MatMulTest {};

TEST_P(MatMulSimdTest, SimdAgreesWithScalarWithinTolerance) {
  std::mt19937 rng(14);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    const int64_t cols = BlockSize(dtype) == 1 ? 301 : 32 * 7;
    OwnedWeights ow = RandomWeights(dtype, 19, cols, rng);
    const std::vector<float> x = Activations(5, cols, rng);
    const std::vector<float> simd = RunMatMul(ow.w, x, 5);
    ASSERT_TRUE(SetIsaForTesting(Isa::kScalar));
    const std::vector<float> scalar = RunMatMul(ow.w, x, 5);
    ASSERT_TRUE(SetIsaForTesting(GetParam()));
    for (size_t i = 0; i < simd.size(); ++i) {
      double mag = 0;
      const int64_t t = i / 19, o = i % 19;
      for (int64_t c = 0; c < cols; ++c) mag += std::fabs(WeightRef(ow.w, o, c) * x[t * cols + c]);
      EXPECT_NEAR(simd[i], scalar[i], 2e-5 * mag) << DTypeName(dtype) << " i=" << i;
    }
  }
}

TEST_P(MatMulTest, ThreadedMatchesSingleThreadedBitwise) {
  std::mt19937 rng(15);
  ThreadPool pool(3);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    const int64_t cols = BlockSize(dtype) == 1 ? 95 : 96;
    OwnedWeights ow = RandomWeights(dtype, 150, cols, rng);
    const std::vector<float> x = Activations(6, cols, rng);
    const std::vector<float> a = RunMatMul(ow.w, x, 6);
    const std::vector<float> b = RunMatMul(ow.w, x, 6, &pool);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << DTypeName(dtype);
  }
}

TEST_P(MatMulTest, DequantizeRowMatchesFloat64Decoding) {
  std::mt19937 rng(16);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    const int64_t cols = BlockSize(dtype) == 1 ? 77 : 32 * 5;
    OwnedWeights ow = RandomWeights(dtype, 4, cols, rng, 3);
    std::vector<float> out(cols);
    for (int64_t r = 0; r < 4; ++r) {
      DequantizeRow(ow.w, r, out.data());
      const uint8_t* row = ow.bytes.data() + r * ow.w.row_bytes;
      for (int64_t i = 0; i < cols; ++i) {
        const double ref = WeightRef(ow.w, r, i);
        if (dtype == DType::kQ4_1) {
          // d*q and +m are two float roundings.
          const uint8_t* blk = row + 20 * (i / 32);
          const double tol = std::ldexp(std::fabs(ref - LoadHalfBlock(blk + 2)) +
                                            std::fabs(LoadHalfBlock(blk + 2)), -23);
          ASSERT_NEAR(out[i], ref, tol) << "row " << r << " col " << i;
        } else {
          // Single rounding of an exactly representable product, or exact.
          ASSERT_EQ(out[i], static_cast<float>(ref)) << DTypeName(dtype) << " col " << i;
        }
      }
    }
  }
}

TEST_P(MatMulTest, ZeroActivationsGiveZeroOrMinTerm) {
  std::mt19937 rng(17);
  OwnedWeights q8 = RandomWeights(DType::kQ8_0, 5, 64, rng);
  const std::vector<float> zeros(64 * 2, 0.0f);
  for (float v : RunMatMul(q8.w, zeros, 2)) EXPECT_EQ(v, 0.0f);
  OwnedWeights q4 = RandomWeights(DType::kQ4_1, 5, 64, rng);
  for (float v : RunMatMul(q4.w, zeros, 2)) EXPECT_EQ(v, 0.0f);
}

// Activation quantisation avoids libm's fmaxf and nearbyintf for speed; it
// must still give their results, ties (x * 127/amax exactly k + 0.5) included,
// on every ISA (AVX-512 has its own code).
TEST(QuantizeActivationRowTest, MatchesFmaxNearbyintFormulationBitwise) {
  const Isa active = ActiveIsa();
  for (Isa isa : SupportedIsas()) {
    ASSERT_TRUE(SetIsaForTesting(isa));
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> u(-3.0f, 3.0f);
    constexpr int64_t kCols = 32 * 8;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> x(kCols);
      for (float& f : x) f = u(rng);
      if (trial % 2 == 1) {
        // Block of exact ties: amax 127 makes the factor 1, values k + 0.5.
        for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 20) - 9.5f;
        x[5] = 127.0f;
        for (int j = 32; j < 64; ++j) x[j] = 0.0f;  // an all-zero block
        x[70] = -0.0f;
      }
      if (trial % 4 == 3) x[100] = NAN;  // a NaN block: d and s NaN, q 0
      std::vector<int8_t> q(kCols);
      std::vector<float> d(kCols / 32), s(kCols / 32);
      QuantizeActivationRow(x.data(), kCols, q.data(), d.data(), s.data());
      for (int64_t b = 0; b < kCols / 32; ++b) {
        if (b == 3 && trial % 4 == 3) {
          ASSERT_TRUE(std::isnan(d[b]) && std::isnan(s[b])) << IsaName(isa);
          for (int j = 0; j < 32; ++j) ASSERT_EQ(q[32 * b + j], 0) << IsaName(isa);
          continue;
        }
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[32 * b + j]));
        const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
          const int want = static_cast<int>(std::nearbyint(x[32 * b + j] * inv));
          ASSERT_EQ(q[32 * b + j], want) << IsaName(isa) << " trial " << trial << " col " << 32 * b + j;
          sum += want;
        }
        const float scale = amax / 127.0f;
        ASSERT_EQ(d[b], F16ToF32(F32ToF16(scale))) << IsaName(isa) << " trial " << trial << " block " << b;
        ASSERT_EQ(s[b], F16ToF32(F32ToF16(scale * static_cast<float>(sum))))
            << IsaName(isa) << " trial " << trial << " block " << b;
      }
    }
  }
  ASSERT_TRUE(SetIsaForTesting(active));
}

INSTANTIATE_TEST_SUITE_P(AllIsas, MatMulTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);
INSTANTIATE_TEST_SUITE_P(SimdIsas, MatMulSimdTest, ::testing::ValuesIn(testing::SimdIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
