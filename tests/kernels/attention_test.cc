#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <cstring>

#include "gtest/gtest.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/cpu/thread_pool.h"
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

// A half cache holds F32ToF16 of what was written, and attention over it is
// bitwise attention over a float cache holding those rounded values: the
// only change half storage makes is the rounding on write.
TEST_P(AttentionTest, HalfCacheIsFloatCacheOfRoundedValues) {
  std::mt19937 rng(53);
  ThreadPool pool(2);
  for (int head_dim : {64, 17}) {
    const int n_head = 6, n_kv = 2, block_size = 16, seq = 41;
    const int64_t width = n_kv * head_dim;
    const int64_t num_blocks = 4;
    const std::vector<int32_t> table = {2, 0, 3};
    std::vector<float> k = RandomVector(seq * width, rng, 3.0f);
    std::vector<float> v = RandomVector(seq * width, rng, 3.0f);
    k[5] = 1e-6f;  // rounds to a half subnormal
    v[7] = 1e-9f;  // rounds to zero
    const std::vector<float> q = RandomVector(seq * n_head * head_dim, rng, 2.0f);
    std::vector<int32_t> positions(seq);
    std::iota(positions.begin(), positions.end(), 0);

    std::vector<uint16_t> khalf(num_blocks * block_size * width), vhalf(khalf.size());
    KvLayer half;
    half.k = khalf.data();
    half.v = vhalf.data();
    half.dtype = DType::kF16;
    half.num_blocks = num_blocks;
    half.block_size = block_size;
    half.n_kv_head = n_kv;
    half.head_dim = head_dim;
    KvWrite(half, table.data(), positions.data(), seq, k.data(), v.data());

    std::vector<float> kr(k.size()), vr(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
      kr[i] = F16ToF32(F32ToF16(k[i]));
      vr[i] = F16ToF32(F32ToF16(v[i]));
    }
    std::vector<float> kbuf(khalf.size()), vbuf(khalf.size());
    KvLayer full = half;
    full.k = kbuf.data();
    full.v = vbuf.data();
    full.dtype = DType::kF32;
    KvWrite(full, table.data(), positions.data(), seq, kr.data(), vr.data());
    // Position 17 lives in block table[1] = 0, slot 1.
    EXPECT_EQ(khalf[((0 * block_size + 1) * n_kv + 1) * head_dim + 2],
              F32ToF16(k[17 * width + head_dim + 2]));

    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    std::vector<float> got(q.size()), want(q.size());
    Attention(q.data(), positions.data(), seq, n_head, half, table.data(), scale, got.data(),
              &pool);
    Attention(q.data(), positions.data(), seq, n_head, full, table.data(), scale, want.data(),
              &pool);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * got.size()), 0)
        << "head_dim=" << head_dim;
  }
}

// Widening halves is exact, so every ISA must agree with the scalar
// conversion on all 65536 bit patterns, at every tail length.
TEST_P(AttentionTest, HalfToFloatMatchesScalarOnEveryValue) {
  std::vector<uint16_t> all(65536 + 13);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 40503u);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  const internal::VecOps& ops = internal::VecOpsFor(GetParam());
  for (int64_t n : {int64_t{65536 + 13}, int64_t{15}, int64_t{7}, int64_t{1}}) {
    std::vector<float> got(n, -1.0f);
    ops.half_to_float(all.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t a, b;
      const float want = F16ToF32(all[i]);
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want, 4);
      ASSERT_EQ(a, b) << "half 0x" << std::hex << all[i] << " n=" << std::dec << n;
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

// The transposed kernel (prefill: 16 scores at a time, a group of query
// heads per call) must give every query exactly AttendAvx512's bits, so which
// path a call takes never shows in a token. Scores that tie, exceed any
// other, or are NaN (a NaN K row) exercise the running maximum.
TEST(AttendAvx512Test, TransposedKernelMatchesRowKernelBitwise) {
  const std::vector<Isa> isas = SupportedIsas();
  if (std::find(isas.begin(), isas.end(), Isa::kAvx512) == isas.end()) {
    GTEST_SKIP() << "no AVX-512 on this CPU";
  }
  std::mt19937 rng(53);
  for (int head_dim : {64, 128, 80, 48, 16}) {
    for (int32_t n : {1, 15, 16, 17, 300}) {
      for (int group : {1, 2, 3, 5, 8}) {
        for (bool special : {false, true}) {
          const std::vector<float> q = RandomVector(int64_t{group} * head_dim, rng, 3.0f);
          std::vector<float> k = RandomVector(static_cast<int64_t>(n) * head_dim, rng, 3.0f);
          const std::vector<float> v = RandomVector(static_cast<int64_t>(n) * head_dim, rng);
          if (special && n > 2) {
            std::copy(k.begin(), k.begin() + head_dim, k.begin() + head_dim);  // a tie
            k[2 * head_dim] = NAN;                                             // a NaN score
          }
          std::vector<const float*> k_rows(n), v_rows(n);
          for (int32_t p = 0; p < n; ++p) {
            k_rows[p] = k.data() + static_cast<int64_t>(n - 1 - p) * head_dim;
            v_rows[p] = v.data() + static_cast<int64_t>(n - 1 - p) * head_dim;
          }
          const int64_t stride = (n + 15) / 16 * 16;
          // 64-byte aligned, as the kernel requires.
          std::vector<float> kt_buf(static_cast<size_t>(head_dim) * stride + 16, 0.0f);
          float* kt = reinterpret_cast<float*>(
              (reinterpret_cast<uintptr_t>(kt_buf.data()) + 63) & ~uintptr_t{63});
          for (int d = 0; d < head_dim; ++d) {
            for (int32_t p = 0; p < n; ++p) kt[((p / 16) * head_dim + d) * 16 + p % 16] = k_rows[p][d];
          }
          const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
          std::vector<float> want(static_cast<size_t>(group) * head_dim);
          std::vector<float> scratch(n);
          for (int g = 0; g < group; ++g) {
            internal::AttendAvx512(q.data() + g * head_dim, k_rows.data(), v_rows.data(), n,
                                   head_dim, scale, scratch.data(), want.data() + g * head_dim);
          }
          std::vector<float> probs(static_cast<size_t>(group) * stride);
          std::vector<float> got(want.size(), -1.0f);
          internal::AttendTransposedAvx512(q.data(), group, kt, stride, v_rows.data(), n,
                                           head_dim, scale, probs.data(), got.data());
          ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * want.size()), 0)
              << "head_dim=" << head_dim << " n=" << n << " group=" << group
              << " special=" << special;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
