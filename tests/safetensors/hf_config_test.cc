// ModelConfigFromHfConfig and Llama3RopeFreqFactors. The llama3 divisors are
// checked against a float64 transcription of Hugging Face's
// _compute_llama3_parameters written here (in its inv_freq form, not the
// divisor form the implementation uses).
#include <cmath>
#include <string>
#include <vector>

#include "common/safetensors/hf_config.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/safetensors/safetensors_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;
using testing::WriteFile;

constexpr char kSmolLm2[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 576,
  "initializer_range": 0.041666666666666664,
  "intermediate_size": 1536,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 9,
  "num_hidden_layers": 30,
  "num_key_value_heads": 3,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 100000,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 49152
})";

constexpr char kLlama31_8B[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "vocab_size": 128256
})";

// Writes `json` as config.json in a fresh directory and parses it.
class HfConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<ModelConfig> Load(const std::string& json) {
    WriteFile(path(), json);
    return ModelConfigFromHfConfig(path());
  }
  // kLlama31_8B with `from` replaced by `to` (which must occur).
  absl::StatusOr<ModelConfig> LoadEdited(const std::string& from, const std::string& to) {
    std::string json = kLlama31_8B;
    const size_t at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) json.replace(at, from.size(), to);
    return Load(json);
  }
  std::string path() const { return dir_.File("config.json"); }

 private:
  TempDir dir_;
};

// HF's formula, float64, per pair: returns inv_freq / inv_freq_llama.
std::vector<double> ReferenceDivisors(int dim, double base, double factor, double low,
                                      double high, double old_ctx) {
  const double pi = std::acos(-1.0);
  const double low_freq_wavelen = old_ctx / low;
  const double high_freq_wavelen = old_ctx / high;
  std::vector<double> out;
  for (int j = 0; j < dim; j += 2) {
    const double inv_freq = 1.0 / std::pow(base, static_cast<double>(j) / dim);
    const double wavelen = 2 * pi / inv_freq;
    double llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const double smooth = (old_ctx / wavelen - low) / (high - low);
    const double smoothed = (1 - smooth) * llama / factor + smooth * llama;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) llama = smoothed;
    out.push_back(inv_freq / llama);
  }
  return out;
}

TEST_F(HfConfigTest, ParsesSmolLm2Config) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, Load(kSmolLm2));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_kv_head, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.rope_freq_base, 100000.0f);
  EXPECT_EQ(c.rope_freq_scale, 1.0f);
  EXPECT_EQ(c.rms_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.has_rope_freqs);
  EXPECT_TRUE(c.rope_freq_factors.empty());
}

TEST_F(HfConfigTest, ParsesLlama31Config) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, Load(kLlama31_8B));
  EXPECT_EQ(c.n_layer, 32);
  EXPECT_EQ(c.n_embd, 4096);
  EXPECT_EQ(c.n_ff, 14336);
  EXPECT_EQ(c.n_head, 32);
  EXPECT_EQ(c.n_kv_head, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.context_length, 131072);
  EXPECT_EQ(c.rope_freq_base, 500000.0f);
  EXPECT_EQ(c.rope_freq_scale, 1.0f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_TRUE(c.has_rope_freqs);
  const std::vector<double> want = ReferenceDivisors(128, 500000.0, 8.0, 1.0, 4.0, 8192.0);
  ASSERT_EQ(c.rope_freq_factors.size(), 64u);
  int medium = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(c.rope_freq_factors[i], want[i], 1e-6 * want[i]) << "pair " << i;
    if (want[i] > 1.0 + 1e-9 && want[i] < 8.0 - 1e-9) ++medium;
  }
  // The example must exercise all three bands of the formula.
  EXPECT_EQ(c.rope_freq_factors.front(), 1.0f);
  EXPECT_EQ(c.rope_freq_factors.back(), 8.0f);
  EXPECT_GT(medium, 0);
}

TEST_F(HfConfigTest, Llama3FactorsMatchReferenceForOtherParameters) {
  // Llama 3.2-like: factor 32, theta 500000, 64-wide heads.
  const std::vector<float> got = Llama3RopeFreqFactors(64, 500000.0, 32.0, 1.0, 4.0, 8192.0);
  const std::vector<double> want = ReferenceDivisors(64, 500000.0, 32.0, 1.0, 4.0, 8192.0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6 * want[i]) << i;
  // Smaller context and theta move the bands.
  const std::vector<float> got2 = Llama3RopeFreqFactors(96, 10000.0, 4.0, 2.0, 8.0, 2048.0);
  const std::vector<double> want2 = ReferenceDivisors(96, 10000.0, 4.0, 2.0, 8.0, 2048.0);
  ASSERT_EQ(got2.size(), 48u);
  for (size_t i = 0; i < want2.size(); ++i) EXPECT_NEAR(got2[i], want2[i], 1e-6 * want2[i]) << i;
}

TEST_F(HfConfigTest, AppliesDefaults) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c,
                       Load(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,
      "intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,
      "rms_norm_eps":1e-6,"vocab_size":100,"max_position_embeddings":256})"));
  EXPECT_EQ(c.n_kv_head, 4);
  EXPECT_EQ(c.rope_freq_base, 10000.0f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.head_dim, 16);
}

TEST_F(HfConfigTest, ParsesLinearScaling) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadEdited(R"("rope_type": "llama3")", R"("type": "linear")"));
  EXPECT_EQ(c.rope_freq_scale, 0.125f);
  EXPECT_FALSE(c.has_rope_freqs);
}

TEST_F(HfConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(ModelConfigFromHfConfig("/nonexistent/config.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/config.json")));
}

TEST_F(HfConfigTest, RejectsBadJson) {
  EXPECT_THAT(Load("{\"hidden_size\": "),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path())));
}

TEST_F(HfConfigTest, RejectsUnsupportedArchitecture) {
  EXPECT_THAT(LoadEdited("LlamaForCausalLM", "GPTNeoXForCausalLM"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("'GPTNeoXForCausalLM'"), HasSubstr("LlamaForCausalLM"),
                             HasSubstr("Qwen2ForCausalLM"), HasSubstr("Glm4ForCausalLM"))));
  EXPECT_THAT(LoadEdited(R"(["LlamaForCausalLM"])", "[]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'architectures'")));
}

TEST_F(HfConfigTest, ReadsQwen2Features) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadEdited("LlamaForCausalLM", "Qwen2ForCausalLM"));
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_TRUE(c.rope_neox);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.post_norms);
  EXPECT_THAT(LoadEdited("\"attention_bias\": false,", "\"attention_bias\": false, "
                         "\"use_sliding_window\": true, \"architectures\": [\"Qwen2ForCausalLM\"],"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("'use_sliding_window'")));
}

TEST_F(HfConfigTest, ReadsGlm4Features) {
  // GLM-4-9B-0414's shape: 128-dim heads, half of each rotated.
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadEdited("LlamaForCausalLM", "Glm4ForCausalLM"));
  EXPECT_EQ(c.architecture, "glm4");
  EXPECT_EQ(c.rope_dim, 64);
  EXPECT_FALSE(c.qkv_bias);  // this file says attention_bias: false
  EXPECT_TRUE(c.post_norms);
  EXPECT_TRUE(c.fused_gate_up);
  EXPECT_FALSE(c.rope_neox);
  EXPECT_THAT(LoadEdited("\"attention_bias\": false,",
                         "\"partial_rotary_factor\": 0.3, \"architectures\": [\"Glm4ForCausalLM\"],"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'partial_rotary_factor'")));
}

TEST_F(HfConfigTest, MistralSlidingWindowCapsContext) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c,
                       LoadEdited("\"attention_bias\": false,",
                                  "\"sliding_window\": 4096, \"architectures\": [\"MistralForCausalLM\"],"));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.context_length, 4096);
}

TEST_F(HfConfigTest, RefusesLlamaBiases) {
  EXPECT_THAT(LoadEdited("\"attention_bias\": false", "\"attention_bias\": true"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("'attention_bias'")));
}

TEST_F(HfConfigTest, RejectsMissingRequiredKey) {
  EXPECT_THAT(LoadEdited(R"("hidden_size": 4096,)", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path()), HasSubstr("'hidden_size'"), HasSubstr("missing"))));
  EXPECT_THAT(LoadEdited(R"("rms_norm_eps": 1e-05,)", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rms_norm_eps'")));
}

TEST_F(HfConfigTest, RejectsIllTypedOrOutOfRangeValues) {
  EXPECT_THAT(LoadEdited(R"("hidden_size": 4096)", R"("hidden_size": "4096")"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'hidden_size'")));
  EXPECT_THAT(LoadEdited(R"("num_hidden_layers": 32)", R"("num_hidden_layers": 0)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'num_hidden_layers'")));
  EXPECT_THAT(LoadEdited(R"("num_hidden_layers": 32)", R"("num_hidden_layers": 3.5)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'num_hidden_layers'")));
  EXPECT_THAT(LoadEdited(R"("rope_theta": 500000.0)", R"("rope_theta": -1)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rope_theta'")));
  EXPECT_THAT(LoadEdited(R"("tie_word_embeddings": false)", R"("tie_word_embeddings": "no")"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'tie_word_embeddings'")));
  EXPECT_THAT(LoadEdited(R"("vocab_size": 128256)", R"("vocab_size": 99999999999)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'vocab_size'")));
}

TEST_F(HfConfigTest, RejectsContradictoryHeads) {
  EXPECT_THAT(LoadEdited(R"("num_key_value_heads": 8)", R"("num_key_value_heads": 5)"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path()), HasSubstr("'num_key_value_heads'"))));
  EXPECT_THAT(LoadEdited(R"("num_attention_heads": 32)", R"("num_attention_heads": 24)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'num_attention_heads'")));
  EXPECT_THAT(LoadEdited(R"("num_attention_heads": 32,)", R"("num_attention_heads": 32, "head_dim": 127,)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'head_dim'")));
  EXPECT_THAT(LoadEdited(R"("num_attention_heads": 32,)", R"("num_attention_heads": 32, "head_dim": 64,)"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("'head_dim'")));
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadEdited(R"("num_attention_heads": 32,)",
                                                 R"("num_attention_heads": 32, "head_dim": 128,)"));
  EXPECT_EQ(c.head_dim, 128);
}

TEST_F(HfConfigTest, RejectsBadRopeScaling) {
  EXPECT_THAT(LoadEdited(R"("low_freq_factor": 1.0,)", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path()), HasSubstr("'rope_scaling.low_freq_factor'"))));
  EXPECT_THAT(LoadEdited(R"("original_max_position_embeddings": 8192,)", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'rope_scaling.original_max_position_embeddings'")));
  EXPECT_THAT(LoadEdited(R"("high_freq_factor": 4.0)", R"("high_freq_factor": 1.0)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rope_scaling.high_freq_factor'")));
  EXPECT_THAT(LoadEdited(R"("factor": 8.0)", R"("factor": 0)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rope_scaling.factor'")));
  EXPECT_THAT(LoadEdited(R"("rope_type": "llama3")", R"("rope_type": "yarn")"),
              StatusIs(absl::StatusCode::kUnimplemented, AllOf(HasSubstr("'yarn'"), HasSubstr("llama3"))));
  EXPECT_THAT(LoadEdited(R"("rope_type": "llama3")", R"("rope_type": "llama3", "type": "linear")"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rope_scaling.type'")));
  EXPECT_THAT(LoadEdited(R"("rope_type": "llama3")", R"("kind": "llama3")"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rope_scaling.rope_type'")));
}

}  // namespace
}  // namespace tessera
