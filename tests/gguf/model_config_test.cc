// ModelConfigFromGguf on tiny writer-built Llama files: defaults, RoPE
// scaling, and every consistency check, each naming the file and the key or
// tensor at fault.
#include "common/model_config.h"

#include <set>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

constexpr char kName[] = "tiny-llama.gguf";
constexpr int kEmbd = 64, kVocab = 40;

// A minimal Llama: the required keys, a token list and a token embedding.
// Keys in `omit` are left out; callers override others by setting them again.
GgufWriter TinyLlama(const std::set<std::string>& omit = {},
                     std::vector<int64_t> embd_shape = {kEmbd, kVocab}) {
  GgufWriter w;
  auto set_u32 = [&](const std::string& k, uint32_t v) {
    if (!omit.count(k)) w.SetUint32(k, v);
  };
  if (!omit.count("general.architecture")) w.SetString("general.architecture", "llama");
  set_u32("llama.block_count", 2);
  set_u32("llama.context_length", 128);
  set_u32("llama.embedding_length", kEmbd);
  set_u32("llama.feed_forward_length", 96);
  set_u32("llama.attention.head_count", 4);
  if (!omit.count("llama.attention.layer_norm_rms_epsilon")) {
    w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  }
  if (!omit.count("tokenizer.ggml.tokens")) {
    std::vector<std::string> tokens;
    for (int i = 0; i < kVocab; ++i) tokens.push_back("t" + std::to_string(i));
    w.SetStringArray("tokenizer.ggml.tokens", tokens);
  }
  if (!omit.count("token_embd.weight")) {
    int64_t n = 1;
    for (int64_t d : embd_shape) n *= d;
    EXPECT_THAT(w.AddTensor("token_embd.weight", embd_shape, GgmlType::kF32,
                            EncodeF32(std::vector<float>(n, 0.5f))),
                testing::IsOk());
  }
  return w;
}

absl::StatusOr<ModelConfig> Config(const GgufWriter& w) {
  auto f = GgufFile::FromBuffer(kName, w.Serialize());
  if (!f.ok()) return f.status();
  return ModelConfigFromGguf(**f);
}

// INVALID_ARGUMENT naming the file and `what`.
::testing::Matcher<const absl::StatusOr<ModelConfig>&> IsInvalid(const std::string& what) {
  return StatusIs(absl::StatusCode::kInvalidArgument,
                  AllOf(HasSubstr(std::string(kName) + ": "), HasSubstr(what)));
}

TEST(ModelConfigTest, ReadsTinyLlamaWithDefaults) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, Config(TinyLlama()));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_ff, 96);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_kv_head, 4);  // head_count_kv defaults to head_count
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope_dim, 16);    // defaults to head_dim
  EXPECT_EQ(c.vocab_size, 40);  // from the token list
  EXPECT_EQ(c.context_length, 128);
  EXPECT_EQ(c.rope_freq_base, 10000.0f);
  EXPECT_EQ(c.rope_freq_scale, 1.0f);
  EXPECT_EQ(c.rms_eps, 1e-6f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.has_rope_freqs);
}

TEST(ModelConfigTest, ReadsOptionalKeysAndTensors) {
  GgufWriter w = TinyLlama({"tokenizer.ggml.tokens"});
  w.SetString("general.name", "Tiny");
  w.SetUint32("llama.attention.head_count_kv", 2);
  w.SetUint32("llama.rope.dimension_count", 8);
  w.SetFloat32("llama.rope.freq_base", 500000.0f);
  w.SetUint32("llama.vocab_size", kVocab);
  ASSERT_THAT(w.AddTensor("output.weight", {kEmbd, kVocab}, GgmlType::kF32,
                          EncodeF32(std::vector<float>(kEmbd * kVocab))),
              testing::IsOk());
  ASSERT_THAT(w.AddTensor("rope_freqs.weight", {4}, GgmlType::kF32, EncodeF32({1, 1, 2, 4})),
              testing::IsOk());
  ASSERT_OK_AND_ASSIGN(ModelConfig c, Config(w));
  EXPECT_EQ(c.name, "Tiny");
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.rope_dim, 8);
  EXPECT_EQ(c.rope_freq_base, 500000.0f);
  EXPECT_EQ(c.vocab_size, 40);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_TRUE(c.has_rope_freqs);
}

TEST(ModelConfigTest, VocabFromEmbeddingShapeWhenNoOtherSource) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, Config(TinyLlama({"tokenizer.ggml.tokens"})));
  EXPECT_EQ(c.vocab_size, 40);
}

TEST(ModelConfigTest, LinearRopeScaling) {
  GgufWriter w = TinyLlama();
  w.SetString("llama.rope.scaling.type", "linear");
  w.SetFloat32("llama.rope.scaling.factor", 4.0f);
  EXPECT_EQ(Config(w).value().rope_freq_scale, 0.25f);

  GgufWriter legacy = TinyLlama();
  legacy.SetFloat32("llama.rope.scale_linear", 2.0f);
  EXPECT_EQ(Config(legacy).value().rope_freq_scale, 0.5f);

  GgufWriter untyped = TinyLlama();
  untyped.SetFloat32("llama.rope.scaling.factor", 8.0f);
  EXPECT_EQ(Config(untyped).value().rope_freq_scale, 0.125f);

  GgufWriter none = TinyLlama();
  none.SetString("llama.rope.scaling.type", "none");
  none.SetFloat32("llama.rope.scaling.factor", 8.0f);
  EXPECT_EQ(Config(none).value().rope_freq_scale, 1.0f);
}

TEST(ModelConfigTest, RejectsUnsupportedRopeScaling) {
  GgufWriter w = TinyLlama();
  w.SetString("llama.rope.scaling.type", "yarn");
  EXPECT_THAT(Config(w), StatusIs(absl::StatusCode::kUnimplemented,
                                  AllOf(HasSubstr(kName), HasSubstr("'llama.rope.scaling.type'"),
                                        HasSubstr("'yarn'"), HasSubstr("none, linear"))));
  GgufWriter negative = TinyLlama();
  negative.SetFloat32("llama.rope.scaling.factor", -2.0f);
  EXPECT_THAT(Config(negative), IsInvalid("'llama.rope.scaling.factor' is -2"));
}

TEST(ModelConfigTest, RejectsUnsupportedArchitectureNamingItAndTheSupportedList) {
  GgufWriter w = TinyLlama();
  w.SetString("general.architecture", "mamba");
  EXPECT_THAT(Config(w), StatusIs(absl::StatusCode::kUnimplemented,
                                  "unsupported architecture 'mamba' in tiny-llama.gguf; "
                                  "supported: llama, qwen2, glm4"));
}

TEST(ModelConfigTest, ArchitectureFeaturesComeFromArchitectureAndTensors) {
  GgufWriter w = TinyLlama();
  ASSERT_OK_AND_ASSIGN(ModelConfig llama, Config(w));
  EXPECT_FALSE(llama.rope_neox || llama.qkv_bias || llama.post_norms || llama.fused_gate_up);
  // An output-projection bias would be silently ignored by the graph: refused.
  ASSERT_THAT(w.AddTensor("blk.0.attn_output.bias", {kEmbd}, GgmlType::kF32,
                          EncodeF32(std::vector<float>(kEmbd, 0.0f))),
              testing::IsOk());
  EXPECT_THAT(Config(w), StatusIs(absl::StatusCode::kUnimplemented,
                                  HasSubstr("'blk.0.attn_output.bias'")));
}

TEST(ModelConfigTest, MissingRequiredKeysAreNotFound) {
  for (const char* key : {"general.architecture", "llama.block_count", "llama.context_length",
                          "llama.embedding_length", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.layer_norm_rms_epsilon"}) {
    EXPECT_THAT(Config(TinyLlama({key})),
                StatusIs(absl::StatusCode::kNotFound,
                         std::string(kName) + ": metadata key '" + key + "' not found"));
  }
}

TEST(ModelConfigTest, RejectsWrongTypesAndNonPositiveValues) {
  GgufWriter w = TinyLlama();
  w.SetString("llama.block_count", "2");
  EXPECT_THAT(Config(w), IsInvalid("'llama.block_count' is string"));
  w = TinyLlama();
  w.SetUint32("llama.block_count", 0);
  EXPECT_THAT(Config(w), IsInvalid("'llama.block_count' is 0"));
  w = TinyLlama();
  w.SetInt32("llama.feed_forward_length", -96);
  EXPECT_THAT(Config(w), IsInvalid("'llama.feed_forward_length' is -96"));
  w = TinyLlama();
  w.SetUint64("llama.context_length", 1ull << 40);
  EXPECT_THAT(Config(w), IsInvalid("'llama.context_length' is 1099511627776"));
  w = TinyLlama();
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 0.0f);
  EXPECT_THAT(Config(w), IsInvalid("'llama.attention.layer_norm_rms_epsilon' is 0"));
  w = TinyLlama();
  w.SetFloat32("llama.rope.freq_base", -1.0f);
  EXPECT_THAT(Config(w), IsInvalid("'llama.rope.freq_base' is -1"));
}

TEST(ModelConfigTest, RejectsHeadCountsThatDoNotDivide) {
  GgufWriter w = TinyLlama();
  w.SetUint32("llama.attention.head_count", 5);
  EXPECT_THAT(Config(w), IsInvalid("'llama.attention.head_count' is 5, which does not divide "
                                   "llama.embedding_length = 64"));
  w = TinyLlama();
  w.SetUint32("llama.attention.head_count_kv", 3);
  EXPECT_THAT(Config(w), IsInvalid("'llama.attention.head_count_kv' is 3"));
}

TEST(ModelConfigTest, RejectsBadRopeDimension) {
  for (uint32_t dim : {7u, 32u}) {
    GgufWriter w = TinyLlama();
    w.SetUint32("llama.rope.dimension_count", dim);
    EXPECT_THAT(Config(w), IsInvalid("'llama.rope.dimension_count' is " + std::to_string(dim)));
  }
}

TEST(ModelConfigTest, RejectsHeadSizeOtherThanEmbdOverHeads) {
  GgufWriter w = TinyLlama();
  w.SetUint32("llama.attention.key_length", 32);
  EXPECT_THAT(Config(w),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr(kName), HasSubstr("'llama.attention.key_length'"))));
  w = TinyLlama();
  w.SetUint32("llama.attention.key_length", 16);  // consistent: accepted
  EXPECT_THAT(Config(w), testing::IsOk());
}

TEST(ModelConfigTest, RejectsEmbeddingInconsistentWithVocabOrWidth) {
  EXPECT_THAT(Config(TinyLlama({}, {kEmbd, kVocab + 1})),
              IsInvalid("tensor 'token_embd.weight' has shape [64, 41]"));
  EXPECT_THAT(Config(TinyLlama({}, {32, kVocab})),
              IsInvalid("tensor 'token_embd.weight' has shape [32, 40]"));
  EXPECT_THAT(Config(TinyLlama({}, {kEmbd * kVocab})),
              IsInvalid("tensor 'token_embd.weight' has shape [2560]"));
  EXPECT_THAT(Config(TinyLlama({"token_embd.weight"})),
              IsInvalid("tensor 'token_embd.weight' is missing"));
  GgufWriter w = TinyLlama();
  w.SetUint32("llama.vocab_size", 41);
  EXPECT_THAT(Config(w), IsInvalid("'tokenizer.ggml.tokens' has 40 tokens but the vocabulary "
                                   "size is 41"));
}

TEST(ModelConfigTest, RejectsMisshapenOutputAndRopeFreqs) {
  GgufWriter w = TinyLlama();
  ASSERT_THAT(w.AddTensor("output.weight", {kEmbd, 8}, GgmlType::kF32,
                          EncodeF32(std::vector<float>(kEmbd * 8))),
              testing::IsOk());
  EXPECT_THAT(Config(w), IsInvalid("tensor 'output.weight' has shape [64, 8]"));

  w = TinyLlama();
  ASSERT_THAT(w.AddTensor("rope_freqs.weight", {16}, GgmlType::kF32,
                          EncodeF32(std::vector<float>(16, 1.0f))),
              testing::IsOk());
  EXPECT_THAT(Config(w), IsInvalid("tensor 'rope_freqs.weight' is F32 [16]; expected F32 [8]"));
}

}  // namespace
}  // namespace tessera
