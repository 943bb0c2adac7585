// The engine's core promise: on one ISA, a token's outputs are bitwise the
// same whatever batch it is in, wherever it sits in that batch, and however
// many threads run. Compared with memcmp, never with a tolerance.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
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

constexpr int64_t kBatchSizes[] = {1, 2, 3, 5, 8, 13, 21, 32, 35};
constexpr int kPoolSizes[] = {1, 2, 3, 4};

class BatchInvarianceTest : public IsaTest {};

TEST_P(BatchInvarianceTest, MatMulRowsDoNotDependOnBatchOrThreads) {
  std::mt19937 rng(21);
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : kPoolSizes) pools.push_back(std::make_unique<ThreadPool>(n));
  constexpr int64_t kTokens = 40;  // room for batches at offsets 0 and 5
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_1}) {
    // Block counts 18, 19 and 17 cover each way the AVX-512 kernels pair
    // blocks (nb % 4 = 2, 3, 1), which the tile kernel must replay exactly.
    for (int64_t cols : {BlockSize(dtype) == 1 ? int64_t{577} : int64_t{576},
                         BlockSize(dtype) == 1 ? int64_t{45} : int64_t{32 * 19},
                         BlockSize(dtype) == 1 ? int64_t{33} : int64_t{32 * 17}}) {
      const int64_t rows = 67;  // not a multiple of any grain
      OwnedWeights ow = RandomWeights(dtype, rows, cols, rng);
      const std::vector<float> x = RandomVector(kTokens * cols, rng);
      // Reference: every token alone, single-threaded.
      std::vector<float> single(kTokens * rows);
      for (int64_t t = 0; t < kTokens; ++t) {
        MatMul(ow.w, x.data() + t * cols, 1, single.data() + t * rows, nullptr);
      }
      std::vector<float> y;
      for (int64_t offset : {0, 5}) {
        for (int64_t batch : kBatchSizes) {
          if (offset + batch > kTokens) continue;
          for (auto& pool : pools) {
            y.assign(batch * rows, -1.0f);
            MatMul(ow.w, x.data() + offset * cols, batch, y.data(), pool.get());
            for (int64_t t = 0; t < batch; ++t) {
              ASSERT_EQ(std::memcmp(y.data() + t * rows, single.data() + (offset + t) * rows,
                                    rows * sizeof(float)),
                        0)
                  << DTypeName(dtype) << " cols=" << cols << " batch=" << batch
                  << " offset=" << offset << " t=" << t << " threads=" << pool->size();
            }
          }
        }
      }
    }
  }
}

struct PagedKv {
  int block_size = 16;
  int n_kv_head;
  int head_dim;
  int64_t num_blocks;
  std::vector<float> k, v;
  std::vector<int32_t> block_table;
  KvLayer layer() {
    KvLayer kv;
    kv.k = k.data();
    kv.v = v.data();
    kv.num_blocks = num_blocks;
    kv.block_size = block_size;
    kv.n_kv_head = n_kv_head;
    kv.head_dim = head_dim;
    return kv;
  }
};

TEST_P(BatchInvarianceTest, AttentionDoesNotDependOnChunkingOrThreads) {
  std::mt19937 rng(22);
  constexpr int kSeq = 45;
  constexpr int kHeads = 9;
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : kPoolSizes) pools.push_back(std::make_unique<ThreadPool>(n));
  for (int head_dim : {64, 17}) {
    PagedKv kv;
    kv.n_kv_head = 3;
    kv.head_dim = head_dim;
    kv.num_blocks = 8;
    const int64_t width = kv.n_kv_head * head_dim;
    kv.k = RandomVector(kv.num_blocks * kv.block_size * width, rng);
    kv.v = RandomVector(kv.num_blocks * kv.block_size * width, rng);
    kv.block_table = {5, 2, 7};  // non-contiguous, out of order pages
    const KvLayer layer = kv.layer();
    const std::vector<float> q = RandomVector(kSeq * kHeads * head_dim, rng);
    std::vector<int32_t> positions(kSeq);
    std::iota(positions.begin(), positions.end(), 0);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

    std::vector<float> single(kSeq * kHeads * head_dim);
    for (int t = 0; t < kSeq; ++t) {
      Attention(q.data() + t * kHeads * head_dim, &positions[t], 1, kHeads, layer,
                kv.block_table.data(), scale, single.data() + t * kHeads * head_dim, nullptr);
    }
    std::vector<float> out(single.size());
    for (int chunk : {1, 2, 3, 7, 16, 45}) {
      for (auto& pool : pools) {
        std::fill(out.begin(), out.end(), -1.0f);
        for (int start = 0; start < kSeq; start += chunk) {
          const int n = std::min(chunk, kSeq - start);
          Attention(q.data() + start * kHeads * head_dim, &positions[start], n, kHeads, layer,
                    kv.block_table.data(), scale, out.data() + start * kHeads * head_dim,
                    pool.get());
        }
        ASSERT_EQ(std::memcmp(out.data(), single.data(), out.size() * sizeof(float)), 0)
            << "head_dim=" << head_dim << " chunk=" << chunk << " threads=" << pool->size();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, BatchInvarianceTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
