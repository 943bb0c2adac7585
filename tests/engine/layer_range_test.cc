// A process that loads a range of layers reads only that range's tensors:
// the pages holding every other tensor are made inaccessible, and a forward
// pass over the range must still run (any stray read would fault).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/test_paths.h"
#include "tests/engine/tiny_model.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

bool InRange(const std::string& name, int begin, int end, int n_layer) {
  for (int l = begin; l < end; ++l) {
    if (absl::StartsWith(name, absl::StrCat("blk.", l, "."))) return true;
  }
  return false;
}

TEST(LayerRangeTest, MiddleStageTouchesOnlyItsLayers) {
  ASSERT_OK_AND_ASSIGN(auto h, EngineHarness::Open(DefaultModelPath(), 2, 8, 10, 20));
  const GgufFile& f = *h->file;
  // Independent count of the bytes this range should hold.
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (InRange(t.name, 10, 20, h->config.n_layer)) expected += t.size_bytes;
  }
  EXPECT_EQ(h->weights->weight_bytes(), expected);
  EXPECT_LT(expected, f.size() / 2);

  // Protect every page that holds no byte of an in-range tensor.
  const long page = sysconf(_SC_PAGESIZE);
  const uintptr_t base = reinterpret_cast<uintptr_t>(f.data());
  std::vector<bool> needed((f.size() + page - 1) / page, false);
  for (const GgufTensorInfo& t : f.tensors()) {
    if (!InRange(t.name, 10, 20, h->config.n_layer)) continue;
    const uintptr_t b = reinterpret_cast<uintptr_t>(f.TensorData(t)) - base;
    for (uintptr_t p = b / page; p <= (b + t.size_bytes - 1) / page; ++p) needed[p] = true;
  }
  ASSERT_EQ(base % page, 0u);
  size_t protected_pages = 0;
  for (size_t p = 0; p < needed.size(); ++p) {
    if (needed[p]) continue;
    ASSERT_EQ(mprotect(reinterpret_cast<void*>(base + p * page), page, PROT_NONE), 0);
    ++protected_pages;
  }
  EXPECT_GT(protected_pages * page, f.size() / 2);

  // A middle stage takes hidden states, not token ids.
  SequenceStep s;
  s.num_tokens = 5;
  s.start_pos = 0;
  s.block_table = {0};
  std::vector<float> hidden(5 * h->config.n_embd);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 1);
  for (float& x : hidden) x = dist(rng);
  StepOutput out;
  ASSERT_THAT(h->runner->Forward({s}, hidden, &out), IsOk());
  EXPECT_EQ(out.hidden.size(), hidden.size());
  EXPECT_TRUE(out.logits.empty());
  for (float x : out.hidden) ASSERT_TRUE(std::isfinite(x));
  for (size_t p = 0; p < needed.size(); ++p) {
    if (!needed[p]) mprotect(reinterpret_cast<void*>(base + p * page), page, PROT_READ);
  }
}

// Splitting the model into stages and carrying hidden states across gives
// bitwise the logits of the whole model in one piece.
TEST(LayerRangeTest, StagesChainedGiveBitwiseWholeModelLogits) {
  const std::string path = DefaultModelPath();
  ASSERT_OK_AND_ASSIGN(auto whole, EngineHarness::Open(path, 2, 8));
  ASSERT_OK_AND_ASSIGN(auto first, EngineHarness::Open(path, 2, 8, 0, 7));
  ASSERT_OK_AND_ASSIGN(auto middle, EngineHarness::Open(path, 1, 8, 7, 21));
  ASSERT_OK_AND_ASSIGN(auto last, EngineHarness::Open(path, 3, 8, 21, 30));
  const std::vector<int32_t> tokens = {1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2};
  for (int step = 0; step < 2; ++step) {
    SequenceStep s;
    s.tokens = step == 0 ? std::vector<int32_t>(tokens.begin(), tokens.end() - 1)
                         : std::vector<int32_t>{tokens.back()};
    s.num_tokens = static_cast<int32_t>(s.tokens.size());
    s.start_pos = step == 0 ? 0 : static_cast<int32_t>(tokens.size() - 1);
    s.block_table = {3};
    s.logits = LogitsMode::kAll;
    StepOutput a, b, c, ref;
    ASSERT_THAT(whole->runner->Forward({s}, {}, &ref), IsOk());
    ASSERT_THAT(first->runner->Forward({s}, {}, &a), IsOk());
    ASSERT_THAT(middle->runner->Forward({s}, a.hidden, &b), IsOk());
    ASSERT_THAT(last->runner->Forward({s}, b.hidden, &c), IsOk());
    ASSERT_EQ(c.logits.size(), ref.logits.size());
    EXPECT_EQ(std::memcmp(c.logits.data(), ref.logits.data(), ref.logits.size() * sizeof(float)),
              0);
  }
}

TEST(LayerRangeTest, RejectsBadStepsWithoutTouchingMemory) {
  ASSERT_OK_AND_ASSIGN(auto h, EngineHarness::Open(DefaultModelPath(), 1, 4));
  StepOutput out;
  SequenceStep s;
  s.seq_id = 17;
  s.tokens = {1, 2, 3};
  s.num_tokens = 3;
  s.block_table = {0};
  s.tokens[1] = 49152;
  EXPECT_THAT(h->runner->Forward({s}, {}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("sequence 17"), HasSubstr("49152"))));
  s.tokens[1] = 2;
  s.block_table = {4};
  EXPECT_THAT(h->runner->Forward({s}, {}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block 4")));
  s.block_table = {0};
  s.start_pos = 15;  // positions 15..17 need two blocks
  EXPECT_THAT(h->runner->Forward({s}, {}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 2")));
  s.start_pos = 8190;
  s.block_table.assign(600, 0);
  EXPECT_THAT(h->runner->Forward({s}, {}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("context")));
  s.start_pos = 0;
  s.num_tokens = 2;  // disagrees with 3 token ids
  EXPECT_THAT(h->runner->Forward({s}, {}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_tokens")));

  ASSERT_OK_AND_ASSIGN(auto mid, EngineHarness::Open(DefaultModelPath(), 1, 4, 3, 5));
  SequenceStep m;
  m.num_tokens = 2;
  m.block_table = {0};
  std::vector<float> short_hidden(576 + 1);
  EXPECT_THAT(mid->runner->Forward({m}, short_hidden, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hidden states")));
}

TEST(ModelWeightsTest, NamesMissingAndMisshapenTensors) {
  TinyModelSpec spec;
  const std::string path = ::testing::TempDir() + "/tiny_weights.gguf";
  ASSERT_THAT(WriteTinyModel(spec, path), IsOk());
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::Open(path));
  ASSERT_OK_AND_ASSIGN(ModelConfig config, ModelConfigFromGguf(*file));
  config.n_ff = 128;  // disagrees with the tensors
  EXPECT_THAT(ModelWeights::Load(*file, config, {0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blk.0.ffn_gate.weight")));
  config.n_ff = spec.n_ff;
  config.n_layer = 4;  // one more layer than the file has
  EXPECT_THAT(ModelWeights::Load(*file, config, {3, 4}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("blk.3.attn_norm.weight")));
  EXPECT_THAT(ModelWeights::Load(*file, config, {2, 9}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer range")));
}

// Llama-3 RoPE scaling arrives as a rope_freqs tensor; the engine must pick it
// up and apply it.
TEST(ModelWeightsTest, AppliesRopeFrequencyFactorsFromTheFile) {
  TinyModelSpec spec;
  spec.matrix_type = GgmlType::kF32;
  spec.embedding_type = GgmlType::kF32;
  const std::string plain = ::testing::TempDir() + "/tiny_rope_plain.gguf";
  const std::string scaled = ::testing::TempDir() + "/tiny_rope_scaled.gguf";
  ASSERT_THAT(WriteTinyModel(spec, plain), IsOk());
  spec.rope_freqs = true;
  ASSERT_THAT(WriteTinyModel(spec, scaled), IsOk());
  ASSERT_OK_AND_ASSIGN(auto a, EngineHarness::Open(plain, 1, 4));
  ASSERT_OK_AND_ASSIGN(auto b, EngineHarness::Open(scaled, 1, 4));
  EXPECT_FALSE(a->config.has_rope_freqs);
  ASSERT_TRUE(b->config.has_rope_freqs);
  ASSERT_NE(b->weights->rope_freq_factors(), nullptr);
  EXPECT_EQ(b->weights->rope_freq_factors()[3], 2.5f);
  SequenceStep s;
  s.tokens = {5, 9, 17, 33, 2};
  s.num_tokens = 5;
  s.block_table = {0};
  s.logits = LogitsMode::kAll;
  StepOutput oa, ob;
  ASSERT_THAT(a->runner->Forward({s}, {}, &oa), IsOk());
  ASSERT_THAT(b->runner->Forward({s}, {}, &ob), IsOk());
  const int64_t v = a->config.vocab_size;
  // Position 0 is not rotated, so it agrees; later positions must not.
  EXPECT_EQ(std::memcmp(oa.logits.data(), ob.logits.data(), v * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(oa.logits.data() + 4 * v, ob.logits.data() + 4 * v, v * sizeof(float)), 0);
}

}  // namespace
}  // namespace tessera::testing
