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
#include "common/testing/status_matchers.h"
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
  const std::string path = ::testing::TempDir() + "/" + name + ".gguf";
  EXPECT_THAT(testing::WriteTinyModel(spec, path), IsOk());
  if (!poison) return path;
  uint64_t offset = 0;
  {
    auto file = GgufFile::Open(path);
    EXPECT_TRUE(file.ok()) << file.status();
    const GgufTensorInfo* t = (*file)->FindTensor("token_embd.weight");
    EXPECT_NE(t, nullptr);
    offset = static_cast<uint64_t>((*file)->TensorData(*t) - (*file)->data()) +
             static_cast<uint64_t>(kPoisonToken) * spec.n_embd * sizeof(float);
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const std::vector<float> nan(spec.n_embd, std::numeric_limits<float>::quiet_NaN());
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(nan.data()), nan.size() * sizeof(float));
  EXPECT_TRUE(f.good());
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
  o.kv_blocks = 8;
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

TEST(StageExecutorTest, RefusesNonFiniteHiddenStatesNamingTheSequence) {
  Stage last = Open(WriteModel("stage_hidden", false), 1, 2);
  ASSERT_NE(last.exec, nullptr);
  ASSERT_TRUE(last.exec->is_last());
  ASSERT_FALSE(last.exec->is_first());
  const int n_embd = last.config.n_embd;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> hidden(3 * n_embd);
  for (float& x : hidden) x = dist(rng);
  // Sequence 11 has one token, 12 has two; the bad value sits in 12's second.
  const std::vector<StageSequence> seqs = {Seq(11, {0}, 0, false), Seq(12, {0, 0}, 1, false)};
  std::vector<float> out;
  std::vector<StageSample> samples;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> poisoned = hidden;
    poisoned[2 * n_embd + 17] = bad;
    EXPECT_THAT(last.exec->Run(seqs, poisoned, &out, &samples),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr("sequence 12"), HasSubstr("req-12"),
                               HasSubstr("position 1"), HasSubstr("non-finite"))))
        << bad;
    EXPECT_TRUE(samples.empty());
    // Refused before running: nothing is held for either sequence.
    EXPECT_EQ(last.exec->live_sequences(), 0);
  }
  // The same step with finite values runs and samples both.
  ASSERT_THAT(last.exec->Run(seqs, hidden, &out, &samples), IsOk());
  ASSERT_EQ(samples.size(), 2u);
  for (const StageSample& s : samples) EXPECT_THAT(s.status, IsOk());
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
