#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <cstring>

#include "gtest/gtest.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::IsaTest;
using testing::RandomVector;

class AttentionTest : public IsaTest {};

TEST_P(AttentionTest, KvWriteThenAttentionMatchesFloat64) {
  std::mt19937 rng(51);
  ThreadPool pool(2);
  for (int head_dim : {64, 17, 8}) {
    const int n_head = 9, n_kv = 3, block_size = 16, seq = 37;
    const int64_t width = n_kv * head_dim;
    const int64_t num_blocks = 6;
    std::vector<float> kbuf(num_blocks * block_size * width, NAN);  // unwritten = NaN
    std::vector<float> vbuf(kbuf.size(), NAN);
    KvLayer kv;
    kv.k = kbuf.data();
    kv.v = vbuf.data();
    kv.num_blocks = num_blocks;
    kv.block_size = block_size;
    kv.n_kv_head = n_kv;
    kv.head_dim = head_dim;
    const std::vector<int32_t> table = {4, 0, 3};
    const std::vector<float> k = RandomVector(seq * width, rng);
    const std::vector<float> v = RandomVector(seq * width, rng);
    const std::vector<float> q = RandomVector(seq * n_head * head_dim, rng, 2.0f);
    std::vector<int32_t> positions(seq);
    std::iota(positions.begin(), positions.end(), 0);
    // Write in two uneven pieces, like a prefill chunk then decode steps.
    KvWrite(kv, table.data(), positions.data(), 20, k.data(), v.data());
    KvWrite(kv, table.data(), positions.data() + 20, seq - 20, k.data() + 20 * width,
            v.data() + 20 * width);
    // The written slot holds exactly the data (layout of kernels.h).
    const int p = 21;  // block table[1] = 0, slot 5
    EXPECT_EQ(kbuf[((0 * block_size + 5) * n_kv + 2) * head_dim + 3], k[p * width + 2 * head_dim + 3]);

    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    std::vector<float> out(q.size());
    Attention(q.data(), positions.data(), seq, n_head, kv, table.data(), scale, out.data(), &pool);
    for (int t = 0; t < seq; ++t) {
      for (int h = 0; h < n_head; ++h) {
        const int kh = h / (n_head / n_kv);
        const float* qv = &q[(t * n_head + h) * head_dim];
        std::vector<double> s(t + 1);
        double max = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          double dot = 0;
          for (int d = 0; d < head_dim; ++d) dot += static_cast<double>(qv[d]) * k[j * width + kh * head_dim + d];
          s[j] = dot * scale;
          max = std::max(max, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - max));
        for (int d = 0; d < head_dim; ++d) {
          double ref = 0, vmax = 0;
          for (int j = 0; j <= t; ++j) {
            ref += s[j] / sum * v[j * width + kh * head_dim + d];
            vmax = std::max(vmax, std::fabs(static_cast<double>(v[j * width + kh * head_dim + d])));
          }
          // Score errors of ~1e-6 absolute (|s| <~ 20) move probabilities by
          // ~1e-6 relative; the output is a convex combination of V.
          ASSERT_NEAR(out[(t * n_head + h) * head_dim + d], ref, 1e-5 * vmax)
              << "head_dim=" << head_dim << " t=" << t << " h=" << h << " d=" << d;
        }
      }
    }
  }
}

// The fused AVX-512 attention step must give exactly what the unfused steps
// (out-of-line dot and axpy, std::fmax) gave before it existed, so fusing
// changed no token. The reference here is those steps written out.
TEST(AttendAvx512Test, MatchesUnfusedStepsBitwise) {
  const std::vector<Isa> isas = SupportedIsas();
  if (std::find(isas.begin(), isas.end(), Isa::kAvx512) == isas.end()) {
    GTEST_SKIP() << "no AVX-512 on this CPU";
  }
  std::mt19937 rng(52);
  for (int head_dim : {64, 128, 80, 40}) {
    for (int32_t n : {1, 2, 17, 300}) {
      const std::vector<float> q = RandomVector(head_dim, rng);
      const std::vector<float> k = RandomVector(static_cast<int64_t>(n) * head_dim, rng);
      const std::vector<float> v = RandomVector(static_cast<int64_t>(n) * head_dim, rng);
      std::vector<const float*> k_rows(n), v_rows(n);
      // Rows in reverse memory order, as a block table may place them.
      for (int32_t p = 0; p < n; ++p) {
        k_rows[p] = k.data() + static_cast<int64_t>(n - 1 - p) * head_dim;
        v_rows[p] = v.data() + static_cast<int64_t>(n - 1 - p) * head_dim;
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

      std::vector<float> probs(n), want(head_dim);
      float max = -INFINITY;
      for (int32_t p = 0; p < n; ++p) {
        probs[p] = internal::DotAvx512(q.data(), k_rows[p], head_dim) * scale;
        max = std::fmax(max, probs[p]);
      }
      double sum = 0.0;
      for (int32_t p = 0; p < n; ++p) {
        probs[p] = std::exp(probs[p] - max);
        sum += probs[p];
      }
      const float inv = static_cast<float>(1.0 / sum);
      std::fill(want.begin(), want.end(), 0.0f);
      for (int32_t p = 0; p < n; ++p) {
        internal::AxpyAvx512(probs[p] * inv, v_rows[p], want.data(), head_dim);
      }

      std::vector<float> scratch(n), got(head_dim, -1.0f);
      internal::AttendAvx512(q.data(), k_rows.data(), v_rows.data(), n, head_dim, scale,
                             scratch.data(), got.data());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * head_dim), 0)
          << "head_dim=" << head_dim << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
