// MatMulShared must be a pure dispatch optimisation: each output bitwise what
// a separate MatMul call on that matrix gives (itself checked against float64
// in matmul_test), for every format, token count and pool size. Outputs start
// as NaN so an element the shared dispatch skipped cannot match.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::IsaTest;
using testing::OwnedWeights;
using testing::RandomVector;
using testing::RandomWeights;

constexpr int64_t kTokenCounts[] = {1, 3, 12, 17, 40, 70};
constexpr int kPoolSizes[] = {1, 2, 3};

// Runs MatMulShared on `ws` and compares each output with a separate MatMul
// on a one-thread pool.
void ExpectSharedMatchesSeparate(const std::vector<OwnedWeights>& owned, int64_t cols,
                                 std::mt19937& rng) {
  std::vector<WeightMatrix> ws;
  for (const OwnedWeights& o : owned) ws.push_back(o.w);
  ThreadPool single(1);
  for (int64_t tokens : kTokenCounts) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), rng);
    std::vector<std::vector<float>> want(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) {
      want[i].assign(static_cast<size_t>(tokens * ws[i].rows), 0.0f);
      MatMul(ws[i], x.data(), tokens, want[i].data(), &single);
    }
    for (int threads : kPoolSizes) {
      ThreadPool pool(threads);
      std::vector<std::vector<float>> got(ws.size());
      std::vector<float*> ys;
      for (size_t i = 0; i < ws.size(); ++i) {
        got[i].assign(static_cast<size_t>(tokens * ws[i].rows),
                      std::numeric_limits<float>::quiet_NaN());
        ys.push_back(got[i].data());
      }
      MatMulShared(ws.data(), ws.size(), x.data(), tokens, ys.data(), &pool);
      for (size_t i = 0; i < ws.size(); ++i) {
        // (A matrix of 0 rows has nothing to compare: memcmp of null is UB.)
        EXPECT_TRUE(got[i].empty() ||
                    std::memcmp(got[i].data(), want[i].data(), sizeof(float) * got[i].size()) == 0)
            << DTypeName(ws[i].dtype) << " matrix " << i << " (" << ws[i].rows << " rows), "
            << tokens << " tokens, " << threads << " threads";
      }
    }
  }
}

class MatMulSharedTest : public IsaTest {};

TEST_P(MatMulSharedTest, MatchesSeparateMatMulsBitwise) {
  std::mt19937 rng(7);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    // 576 columns = 18 blocks; row counts as in Q/K/V plus one that is not a
    // multiple of the row grain, so chunks straddle matrix boundaries.
    const int64_t cols = 576;
    std::vector<OwnedWeights> owned;
    for (int64_t rows : {576, 192, 192, 37}) owned.push_back(RandomWeights(dtype, rows, cols, rng));
    SCOPED_TRACE(DTypeName(dtype));
    ExpectSharedMatchesSeparate(owned, cols, rng);
  }
}

TEST_P(MatMulSharedTest, MixedFormatsFallBackToSeparateCalls) {
  std::mt19937 rng(8);
  const int64_t cols = 32 * 17;
  std::vector<OwnedWeights> owned;
  owned.push_back(RandomWeights(DType::kQ4_1, 96, cols, rng));
  owned.push_back(RandomWeights(DType::kQ8_0, 64, cols, rng));
  owned.push_back(RandomWeights(DType::kF16, 33, cols, rng));
  ExpectSharedMatchesSeparate(owned, cols, rng);
}

TEST_P(MatMulSharedTest, PaddedRowsAndEmptyMatrices) {
  std::mt19937 rng(9);
  const int64_t cols = 32 * 19;
  std::vector<OwnedWeights> owned;
  owned.push_back(RandomWeights(DType::kQ4_1, 50, cols, rng, /*row_pad=*/12));
  owned.push_back(RandomWeights(DType::kQ4_1, 0, cols, rng));
  owned.push_back(RandomWeights(DType::kQ4_1, 81, cols, rng, /*row_pad=*/12));
  ExpectSharedMatchesSeparate(owned, cols, rng);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, MatMulSharedTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
