// StageExecutor without gRPC: what a stage does with the floats it is sent
// and the logits it computes. Non-finite hidden states are refused before
// anything runs, naming the sequence; a non-finite logits row fails only its
// own sequence, and the step's other sequences get exactly the token they
// get alone. Models are tiny random-weight GGUF files written by the test.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/tiny_model.h"
#include "worker/stage_executor.h"

namespace tessera {
namespace {

using ::tessera::testing::IsOk;
using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kPoisonToken = 7;

// A 2-layer tiny model, untied, with an F32 embedding; with `poison`, token
// kPoisonToken's embedding row is NaN.
std::string WriteModel(const std::string& name, bool poison) {
  testing::TinyModelSpec spec;
  spec.n_layer = 2;
  spec.tied_embeddings = false;
  spec.embedding_type = GgmlType::kF32;
  spec.matrix_type = GgmlType::kF32;
  if (poison) spec.poison_token = kPoisonToken;
  const std::string path = ::testing::TempDir() + "/" + name + ".gguf";
  EXPECT_THAT(testing::WriteTinyModel(spec, path), IsOk());
  return path;
}

struct Stage {
  std::unique_ptr<GgufFile> file;
  ModelConfig config;
  std::unique_ptr<StageExecutor> exec;
};

Stage Open(const std::string& path, int begin, int end) {
  Stage s;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  s.file = *std::move(file);
  auto config = ModelConfigFromGguf(*s.file);
  EXPECT_TRUE(config.ok()) << config.status();
  s.config = *config;
  StageOptions o;
  o.layers = {begin, end};
  o.runner.kv_blocks = 8;
  auto exec = StageExecutor::Create(*s.file, s.config, o);
  EXPECT_TRUE(exec.ok()) << exec.status();
  s.exec = *std::move(exec);
  return s;
}

StageSequence Seq(int64_t id, std::vector<int32_t> tokens, int32_t block, bool first_stage) {
  StageSequence s;
  s.request_id = "req-" + std::to_string(id);
  s.step.seq_id = id;
  s.step.start_pos = 0;
  s.step.num_tokens = static_cast<int32_t>(tokens.size());
  if (first_stage) s.step.tokens = std::move(tokens);
  s.step.block_table = {block};
  s.sample = true;
  s.sampling.temperature = 0;
  s.want_logprob = true;
  return s;
}

TEST(StageExecutorTest, RefusesNonFiniteHiddenStatesOfOneSequenceAlone) {
  const std::string path = WriteModel("stage_hidden", false);
  const int n_embd = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> hidden(3 * n_embd);
  for (float& x : hidden) x = dist(rng);
  // Sequence 11 has one token, 12 has two; the bad value sits in 12's second.
  const std::vector<StageSequence> seqs = {Seq(11, {0}, 0, false), Seq(12, {0, 0}, 1, false)};
  // What 11 gets when sent alone.
  Stage alone = Open(path, 1, 2);
  ASSERT_NE(alone.exec, nullptr);
  ASSERT_EQ(alone.config.n_embd, n_embd);
  std::vector<float> out;
  std::vector<StageSample> alone_samples;
  ASSERT_THAT(alone.exec->Run({seqs[0]}, absl::MakeConstSpan(hidden.data(), n_embd), &out,
                              &alone_samples),
              IsOk());
  ASSERT_EQ(alone_samples.size(), 1u);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    Stage last = Open(path, 1, 2);
    ASSERT_TRUE(last.exec->is_last());
    ASSERT_FALSE(last.exec->is_first());
    std::vector<float> poisoned = hidden;
    poisoned[2 * n_embd + 17] = bad;
    std::vector<StageSample> samples;
    ASSERT_THAT(last.exec->Run(seqs, poisoned, &out, &samples), IsOk()) << bad;
    ASSERT_EQ(samples.size(), 2u);
    EXPECT_EQ(samples[0].seq_id, 12);
    EXPECT_THAT(samples[0].status,
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr("sequence 12"), HasSubstr("req-12"),
                               HasSubstr("position 1"), HasSubstr("non-finite"))))
        << bad;
    // 11 ran as if alone; 12 did not run, so nothing is held for it.
    EXPECT_EQ(samples[1].seq_id, 11);
    ASSERT_THAT(samples[1].status, IsOk());
    EXPECT_EQ(samples[1].token_id, alone_samples[0].token_id);
    EXPECT_EQ(samples[1].logprob, alone_samples[0].logprob);
    EXPECT_EQ(last.exec->live_sequences(), 1);
  }
  // A middle stage forwards only the rows of the sequences that ran.
  const std::string deeper = ::testing::TempDir() + "/stage_hidden3.gguf";
  testing::TinyModelSpec spec;
  spec.n_layer = 3;
  ASSERT_THAT(testing::WriteTinyModel(spec, deeper), IsOk());
  Stage middle = Open(deeper, 1, 2);
  ASSERT_FALSE(middle.exec->is_last());
  std::vector<float> poisoned = hidden;
  poisoned[5] = std::numeric_limits<float>::quiet_NaN();  // sequence 11
  std::vector<StageSample> samples;
  ASSERT_THAT(middle.exec->Run(seqs, poisoned, &out, &samples), IsOk());
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].seq_id, 11);
  EXPECT_EQ(out.size(), 2u * n_embd);  // sequence 12's two rows
  EXPECT_EQ(middle.exec->live_sequences(), 1);
}

TEST(StageExecutorTest, NonFiniteLogitsFailOnlyTheirSequence) {
  const std::string path = WriteModel("stage_logits", true);
  Stage whole = Open(path, 0, 2);
  ASSERT_NE(whole.exec, nullptr);
  // Sequence 21's prompt holds the poisoned token; 22's does not.
  std::vector<float> out;
  std::vector<StageSample> samples;
  ASSERT_THAT(whole.exec->Run({Seq(21, {3, kPoisonToken, 5}, 0, true), Seq(22, {3, 4, 5}, 1, true)},
                              {}, &out, &samples),
              IsOk());
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].seq_id, 21);
  EXPECT_THAT(samples[0].status,
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("sequence 21"), HasSubstr("req-21"), HasSubstr("logits"),
                             HasSubstr("not sampled"))));
  EXPECT_EQ(samples[1].seq_id, 22);
  ASSERT_THAT(samples[1].status, IsOk());

  // 22's token is the one it gets alone on a fresh stage.
  Stage alone = Open(path, 0, 2);
  std::vector<StageSample> alone_samples;
  ASSERT_THAT(alone.exec->Run({Seq(22, {3, 4, 5}, 0, true)}, {}, &out, &alone_samples), IsOk());
  ASSERT_EQ(alone_samples.size(), 1u);
  EXPECT_EQ(samples[1].token_id, alone_samples[0].token_id);
  EXPECT_EQ(samples[1].logprob, alone_samples[0].logprob);
}

}  // namespace
}  // namespace tessera
