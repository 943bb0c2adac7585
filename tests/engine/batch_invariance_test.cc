// A token's logits must be bitwise identical however its sequence is prefilled
// (at once, token by token, in chunks of any size), whatever else shares its
// steps, wherever its KV blocks live, and with any thread count. This is the
// property that later lets a request move between batches, pipeline stages and
// replicas without changing a token.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cpu/isa.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/test_paths.h"
#include "tests/engine/tiny_model.h"

namespace tessera::testing {
namespace {

constexpr int kBlock = KvCache::kDefaultBlockSize;

struct Plan {
  int chunk = 1;             // tokens of the sequence under test per step
  bool companions = false;   // other sequences share every step
  bool shuffled_blocks = false;
};

std::vector<int32_t> RandomTokens(int n, int vocab, uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Returns the logits of every position of `tokens` ([n][vocab]) run under `plan`.
std::vector<float> RunPlan(EngineHarness& h, const std::vector<int32_t>& tokens, const Plan& plan) {
  const int n = static_cast<int>(tokens.size());
  const int per_seq = (n + kBlock - 1) / kBlock;
  std::vector<int32_t> blocks(h.kv->num_blocks());
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<int32_t>(i);
  if (plan.shuffled_blocks) std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
  // The sequence under test takes blocks from the middle of the pool so that
  // companions sit on both sides of it.
  std::vector<int32_t> table_a(blocks.begin() + per_seq, blocks.begin() + 2 * per_seq);
  std::vector<int32_t> table_b(blocks.begin(), blocks.begin() + per_seq);
  std::vector<int32_t> table_c(blocks.begin() + 2 * per_seq, blocks.begin() + 3 * per_seq);
  const std::vector<int32_t> other_b = RandomTokens(n, h.config.vocab_size, 99);
  const std::vector<int32_t> other_c = RandomTokens(n, h.config.vocab_size, 98);

  std::vector<float> logits;
  int pos = 0, pos_b = 0, pos_c = 0;
  StepOutput out;
  while (pos < n) {
    std::vector<SequenceStep> step;
    auto add = [&](int64_t id, const std::vector<int32_t>& toks, int& p, int count,
                   const std::vector<int32_t>& table, LogitsMode mode) {
      count = std::min(count, n - p);
      if (count <= 0) return;
      SequenceStep s;
      s.seq_id = id;
      s.tokens.assign(toks.begin() + p, toks.begin() + p + count);
      s.num_tokens = count;
      s.start_pos = p;
      s.block_table = table;
      s.logits = mode;
      step.push_back(std::move(s));
      p += count;
    };
    if (plan.companions) add(2, other_b, pos_b, 3, table_b, LogitsMode::kLast);
    add(1, tokens, pos, plan.chunk, table_a, LogitsMode::kAll);
    if (plan.companions) add(3, other_c, pos_c, 1, table_c, LogitsMode::kAll);
    EXPECT_THAT(h.runner->Forward(step, {}, &out), IsOk());
    // Rows come in sequence order: skip the companion rows.
    int64_t row = 0;
    for (const SequenceStep& s : step) {
      const int64_t rows = s.logits == LogitsMode::kAll ? s.num_tokens
                           : s.logits == LogitsMode::kLast ? 1 : 0;
      if (s.seq_id == 1) {
        logits.insert(logits.end(), out.logits.begin() + row * h.config.vocab_size,
                      out.logits.begin() + (row + rows) * h.config.vocab_size);
      }
      row += rows;
    }
  }
  return logits;
}

// Counts positions whose logits differ in any bit from the reference.
int DifferingPositions(const std::vector<float>& ref, const std::vector<float>& got, int vocab) {
  if (ref.size() != got.size()) return -1;
  int bad = 0;
  for (size_t p = 0; p * vocab < ref.size(); ++p) {
    if (std::memcmp(&ref[p * vocab], &got[p * vocab], vocab * sizeof(float)) != 0) ++bad;
  }
  return bad;
}

void CheckInvariance(const std::string& path, int n_tokens, const std::vector<int>& chunks,
                     const std::vector<int>& thread_counts, const std::vector<kernels::Isa>& isas) {
  for (kernels::Isa isa : isas) {
    ASSERT_TRUE(kernels::SetIsaForTesting(isa));
    SCOPED_TRACE(std::string("isa ") + kernels::IsaName(isa));
    ASSERT_OK_AND_ASSIGN(auto ref_h, EngineHarness::Open(path, 1, 64));
    const std::vector<int32_t> tokens = RandomTokens(n_tokens, ref_h->config.vocab_size, 5);
    const std::vector<float> ref = RunPlan(*ref_h, tokens, Plan{n_tokens, false, false});
    ASSERT_EQ(ref.size(), size_t(n_tokens) * ref_h->config.vocab_size);
    // Bitwise equality of NaNs would prove nothing: the logits must be
    // finite and not all alike.
    ASSERT_TRUE(std::all_of(ref.begin(), ref.end(), [](float v) { return std::isfinite(v); }));
    ASSERT_NE(*std::min_element(ref.begin(), ref.end()), *std::max_element(ref.begin(), ref.end()));
    int runs = 0;
    for (int threads : thread_counts) {
      ASSERT_OK_AND_ASSIGN(auto h, EngineHarness::Open(path, threads, 64));
      for (int chunk : chunks) {
        for (int variant = 0; variant < 3; ++variant) {
          Plan plan{chunk, variant >= 1, variant == 2};
          const std::vector<float> got = RunPlan(*h, tokens, plan);
          EXPECT_EQ(DifferingPositions(ref, got, h->config.vocab_size), 0)
              << "threads " << threads << ", chunk " << chunk << ", companions "
              << plan.companions << ", shuffled blocks " << plan.shuffled_blocks;
          ++runs;
        }
      }
    }
    std::printf("[batch invariance] %s: %d plans bitwise equal to one-shot prefill (isa %s)\n",
                path.c_str(), runs, kernels::IsaName(isa));
  }
  kernels::SetIsaForTesting(kernels::DetectIsa());
}

class TinyModelInvariance : public ::testing::TestWithParam<GgmlType> {};

TEST_P(TinyModelInvariance, LogitsBitwiseEqualAcrossChunkingBatchingThreads) {
  TinyModelSpec spec;
  spec.matrix_type = GetParam();
  spec.embedding_type = GetParam() == GgmlType::kQ4_1 ? GgmlType::kQ8_0 : GetParam();
  spec.tied_embeddings = GetParam() != GgmlType::kF16;
  const std::string path = ::testing::TempDir() + "/tiny_invariance_" +
                           GgmlTypeName(GetParam()) + ".gguf";
  ASSERT_THAT(WriteTinyModel(spec, path), IsOk());
  std::vector<int> chunks;
  for (int c = 1; c <= 21; ++c) chunks.push_back(c);
  CheckInvariance(path, 21, chunks, {1, 2, 3, 4}, kernels::SupportedIsas());
}

INSTANTIATE_TEST_SUITE_P(AllFormats, TinyModelInvariance,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                                           GgmlType::kQ8_0, GgmlType::kQ4_1),
                         [](const auto& info) { return std::string(GgmlTypeName(info.param)); });

// Every other format the kernels take, on a model wide enough for the
// super-block formats (256), with random valid weight blocks: fewer plans
// per format, every ISA (each has its own tiles and row kernels).
class WideModelInvariance : public ::testing::TestWithParam<GgmlType> {};

TEST_P(WideModelInvariance, LogitsBitwiseEqualAcrossChunkingBatchingThreads) {
  TinyModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = 256;
  spec.n_ff = 256;
  spec.matrix_type = GetParam();
  spec.embedding_type = GetParam();
  const std::string path = ::testing::TempDir() + "/wide_invariance_" +
                           GgmlTypeName(GetParam()) + ".gguf";
  ASSERT_THAT(WriteTinyModel(spec, path), IsOk());
  CheckInvariance(path, 21, {1, 2, 5, 12, 16, 21}, {1, 3}, kernels::SupportedIsas());
}

INSTANTIATE_TEST_SUITE_P(EveryOtherFormat, WideModelInvariance,
                         ::testing::Values(GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1,
                                           GgmlType::kIQ4_NL, GgmlType::kQ2_K, GgmlType::kQ3_K,
                                           GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                                           GgmlType::kIQ4_XS),
                         [](const auto& info) { return std::string(GgmlTypeName(info.param)); });

TEST(SmolLm2Invariance, LogitsBitwiseEqualAcrossChunkingBatchingThreads) {
  // The real model on the fastest path only (the tiny models cover every ISA).
  CheckInvariance(DefaultModelPath(), 19, {1, 2, 5, 8, 19}, {1, 2, 3}, {kernels::DetectIsa()});
}

}  // namespace
}  // namespace tessera::testing
