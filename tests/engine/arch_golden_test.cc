// Every supported architecture against llama.cpp, and Hugging Face
// directories against GGUF files, through tests/golden/arch/ (written by
// scripts/golden/gen_arch_golden.py with llama-cpp-python; settings recorded
// in each *_logits.json).
//
// Each variant is a tiny random-weight model (Llama 3 with llama3 RoPE
// scaling, Llama 2, Mistral, Qwen2 with Q/K/V biases and rotate-half RoPE,
// GLM-4 with partial RoPE, post norms and fused gate/up), F32 throughout:
//  * teacher-forced over 64 fixed tokens, our top-1 equals llama.cpp's at
//    every position where llama.cpp's top-1/top-2 margin exceeds 0.02, and
//    our logits of llama.cpp's top-10 ids are within 1e-3 of its own;
//  * the same weights as a Hugging Face directory (config.json +
//    model.safetensors, Hugging Face layout) give bitwise the logits of the
//    GGUF, which llama.cpp's conventions lay out differently (Llama Q/K rows
//    permuted, RoPE scaling as a tensor);
//  * that directory, and its F16 and BF16 copies, give transformers' own
//    float32 logits (scripts/golden/gen_hf_transformers_golden.py) within
//    1e-3, top-1 equal wherever transformers' margin exceeds 0.02.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/model_config.h"
#include "common/safetensors/model_source.h"
#include "engine/model_weights.h"
#include "testing/status_matchers.h"
#include "engine/local_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/test_paths.h"

namespace tessera::testing {
namespace {

using nlohmann::json;

constexpr double kTopOneMargin = 0.02;
// F32 weights and activations on both sides; only summation order differs.
constexpr double kLogitBound = 1e-3;

std::unique_ptr<LocalEngine> OpenEngine(const std::string& path) {
  LocalEngineOptions o;
  o.model_path = path;
  o.threads = 2;
  o.max_context = 128;
  auto engine = LocalEngine::Open(o);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

class ArchGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchGoldenTest, TopOneMatchesLlamaCpp) {
  const std::string name = GetParam();
  std::ifstream in(GoldenPath("arch/" + name + "_logits.json"));
  ASSERT_TRUE(in) << "missing golden for " << name;
  const json golden = json::parse(in);
  auto engine = OpenEngine(GoldenPath("arch/" + name + ".gguf"));
  ASSERT_NE(engine, nullptr);
  const auto tokens = golden["tokens"].get<std::vector<int32_t>>();
  ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->PromptLogits(tokens, 64));
  const int64_t vocab = engine->config().vocab_size;
  const json& tf = golden["teacher_forced"];
  ASSERT_EQ(tf.size(), tokens.size());
  int decisive = 0, mismatches = 0;
  double max_delta = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    const float* row = &logits[p * vocab];
    const auto ids = tf[p]["ids"].get<std::vector<int32_t>>();
    const auto ref = tf[p]["logits"].get<std::vector<double>>();
    for (size_t i = 0; i < ids.size(); ++i) {
      max_delta = std::max(max_delta, std::fabs(row[ids[i]] - ref[i]));
    }
    int32_t ours = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (row[v] > row[ours]) ours = static_cast<int32_t>(v);
    }
    if (tf[p]["margin"].get<double>() > kTopOneMargin) {
      ++decisive;
      if (ours != ids[0]) {
        ++mismatches;
        ADD_FAILURE() << absl::StrFormat("%s position %d: ours %d, llama.cpp %d (margin %.4f)",
                                         name, p, ours, ids[0],
                                         tf[p]["margin"].get<double>());
      }
    }
  }
  std::printf("%s: top-1 equal at %d/%d decisive positions; max |logit delta| %.3g\n",
              name.c_str(), decisive - mismatches, decisive, max_delta);
  EXPECT_GT(decisive, static_cast<int>(tokens.size()) / 2) << "golden has too few decisive rows";
  EXPECT_LE(max_delta, kLogitBound);
}

TEST_P(ArchGoldenTest, HuggingFaceDirectoryEqualsGgufBitwise) {
  const std::string name = GetParam();
  auto gguf = OpenEngine(GoldenPath("arch/" + name + ".gguf"));
  auto hf = OpenEngine(GoldenPath("arch/" + name + "_hf"));
  ASSERT_NE(gguf, nullptr);
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->config().architecture, gguf->config().architecture);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back((i * 37 + 11) % 300);
  ASSERT_OK_AND_ASSIGN(std::vector<float> a, gguf->PromptLogits(tokens, 16));
  ASSERT_OK_AND_ASSIGN(std::vector<float> b, hf->PromptLogits(tokens, 16));
  ASSERT_EQ(a.size(), b.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  EXPECT_EQ(differing, 0u) << name << ": " << differing << " of " << a.size()
                           << " logits differ between the HF directory and the GGUF";
}

// The Hugging Face directories against Hugging Face's own implementation:
// transformers (float32, half weights widened exactly) teacher-forced over
// the same tokens, recorded in <name>_transformers.json by
// scripts/golden/gen_hf_transformers_golden.py, which also wrote the F16 and
// BF16 copies of each directory. Tessera widens half weights exactly too and
// keeps activations in float32, so only summation order differs.
TEST_P(ArchGoldenTest, HuggingFaceDirectoriesMatchTransformers) {
  const std::string name = GetParam();
  std::ifstream in(GoldenPath("arch/" + name + "_transformers.json"));
  ASSERT_TRUE(in) << "missing transformers golden for " << name;
  const json golden = json::parse(in);
  const auto tokens = golden["tokens"].get<std::vector<int32_t>>();
  int directories = 0;
  for (const auto& [dtype, dir] : golden["directories"].items()) {
    auto engine = OpenEngine(GoldenPath("arch/" + dir.get<std::string>()));
    ASSERT_NE(engine, nullptr) << dir;
    ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->PromptLogits(tokens, 64));
    const int64_t vocab = engine->config().vocab_size;
    const json& tf = golden["teacher_forced"][dtype];
    ASSERT_EQ(tf.size(), tokens.size());
    int decisive = 0, mismatches = 0;
    double max_delta = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      const float* row = &logits[p * vocab];
      const auto ids = tf[p]["ids"].get<std::vector<int32_t>>();
      const auto ref = tf[p]["logits"].get<std::vector<double>>();
      for (size_t i = 0; i < ids.size(); ++i) {
        max_delta = std::max(max_delta, std::fabs(row[ids[i]] - ref[i]));
      }
      int32_t ours = 0;
      for (int64_t v = 1; v < vocab; ++v) {
        if (row[v] > row[ours]) ours = static_cast<int32_t>(v);
      }
      if (tf[p]["margin"].get<double>() > kTopOneMargin) {
        ++decisive;
        mismatches += ours != ids[0];
      }
    }
    std::printf("%s %s (%s): top-1 equal to transformers at %d/%d decisive positions; max "
                "|logit delta| %.3g\n",
                name.c_str(), dtype.c_str(), dir.get<std::string>().c_str(),
                decisive - mismatches, decisive, max_delta);
    EXPECT_EQ(mismatches, 0) << name << " " << dtype;
    EXPECT_GT(decisive, static_cast<int>(tokens.size()) / 2) << name << " " << dtype;
    EXPECT_LE(max_delta, kLogitBound) << name << " " << dtype;
    ++directories;
  }
  EXPECT_EQ(directories, 3);  // F32, F16 and BF16
}

// A worker loading layers [1, 2) of a Hugging Face directory re-lays out
// only that layer's Q and K (the only tensors not used in place); the rest
// of the model is never read.
TEST(ArchHfRangeTest, LayerRangeProducesOnlyItsOwnTensors) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file,
                       OpenModelFile(GoldenPath("arch/llama3_hf")));
  ASSERT_OK_AND_ASSIGN(ModelConfig config, ModelConfigFromGguf(*file));
  ASSERT_EQ(config.n_layer, 2);
  EXPECT_TRUE(file->ProducedTensors().empty());
  ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(*file, config, LayerRange{1, 2}));
  EXPECT_THAT(file->ProducedTensors(),
              ::testing::UnorderedElementsAre("blk.1.attn_q.weight", "blk.1.attn_k.weight"));
}

INSTANTIATE_TEST_SUITE_P(Architectures, ArchGoldenTest,
                         ::testing::Values("llama3", "llama2", "mistral", "qwen2", "glm4"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tessera::testing
