// Parses the real SmolLM2-135M-Instruct Q4_1 file. Expected values come from
// the model card and from reading the same file with gguf-py (an independent
// implementation), not from our own parser.
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

class SmolLm2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string path = testing::RealModelPath();
    if (path.empty()) return;
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(file).value().release();
  }
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
  }
  void SetUp() override {
    if (file_ == nullptr) GTEST_FAIL() << "the real model could not be opened";
  }
  static const GgufFile* file_;
};
const GgufFile* SmolLm2Test::file_ = nullptr;

TEST_F(SmolLm2Test, HeaderAndCounts) {
  EXPECT_EQ(file_->version(), 3u);
  EXPECT_EQ(file_->size(), 98362432u);
  EXPECT_EQ(file_->alignment(), 32u);
  EXPECT_EQ(file_->header_bytes(), 1785664u);  // gguf-py's data_offset
  EXPECT_THAT(file_->tensors(), SizeIs(272));
  EXPECT_THAT(file_->Keys(), SizeIs(33));
  EXPECT_EQ(file_->Keys().front(), "general.architecture");
  EXPECT_EQ(file_->Keys().back(), "general.quantization_version");
}

TEST_F(SmolLm2Test, HyperParameterKeys) {
  EXPECT_THAT(file_->GetString("general.architecture"), testing::IsOk());
  EXPECT_EQ(file_->GetString("general.architecture").value(), "llama");
  EXPECT_EQ(file_->GetUint("llama.block_count").value(), 30u);
  EXPECT_EQ(file_->GetUint("llama.context_length").value(), 8192u);
  EXPECT_EQ(file_->GetUint("llama.embedding_length").value(), 576u);
  EXPECT_EQ(file_->GetUint("llama.feed_forward_length").value(), 1536u);
  EXPECT_EQ(file_->GetUint("llama.attention.head_count").value(), 9u);
  EXPECT_EQ(file_->GetUint("llama.attention.head_count_kv").value(), 3u);
  EXPECT_EQ(file_->GetUint("llama.vocab_size").value(), 49152u);
  EXPECT_EQ(file_->GetUint("llama.rope.dimension_count").value(), 64u);
  EXPECT_EQ(file_->GetFloat("llama.rope.freq_base").value(), 100000.0);
  EXPECT_EQ(file_->GetFloat("llama.attention.layer_norm_rms_epsilon").value(),
            static_cast<double>(1e-5f));
  EXPECT_EQ(file_->GetInt("general.file_type").value(), 3);  // MOSTLY_Q4_1
}

TEST_F(SmolLm2Test, TokenizerKeys) {
  EXPECT_EQ(file_->GetString("tokenizer.ggml.model").value(), "gpt2");
  EXPECT_EQ(file_->GetString("tokenizer.ggml.pre").value(), "smollm");
  EXPECT_EQ(file_->GetBool("tokenizer.ggml.add_bos_token").value(), false);
  EXPECT_EQ(file_->GetUint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(file_->GetUint("tokenizer.ggml.eos_token_id").value(), 2u);

  ASSERT_OK_AND_ASSIGN(auto tokens, file_->GetStringArray("tokenizer.ggml.tokens"));
  ASSERT_THAT(tokens, SizeIs(49152));
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(tokens.back(), "ectable");

  ASSERT_OK_AND_ASSIGN(auto merges, file_->GetStringArray("tokenizer.ggml.merges"));
  ASSERT_THAT(merges, SizeIs(48900));
  EXPECT_EQ(merges[0], "\xC4\xA0 t");  // "Ġ t"
  EXPECT_EQ(merges[1], "\xC4\xA0 a");

  ASSERT_OK_AND_ASSIGN(auto types, file_->GetIntArray("tokenizer.ggml.token_type"));
  ASSERT_THAT(types, SizeIs(49152));
  EXPECT_EQ(types[0], 3);  // control
  EXPECT_EQ(types[16], 3);
  EXPECT_EQ(types[17], 1);  // normal
  EXPECT_EQ(file_->GetArrayLength("tokenizer.ggml.tokens").value(), 49152u);
}

TEST_F(SmolLm2Test, TensorTypesAndShapes) {
  std::map<GgmlType, int> counts;
  for (const GgufTensorInfo& t : file_->tensors()) ++counts[t.type];
  EXPECT_EQ(counts[GgmlType::kQ4_1], 210);
  EXPECT_EQ(counts[GgmlType::kF32], 61);
  EXPECT_EQ(counts[GgmlType::kQ8_0], 1);

  const GgufTensorInfo* embd = file_->FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, GgmlType::kQ8_0);
  EXPECT_THAT(embd->shape, ElementsAre(576, 49152));
  EXPECT_EQ(embd->offset, 0u);
  EXPECT_EQ(embd->size_bytes, 30081024u);  // 576*49152/32 blocks * 34 bytes

  const GgufTensorInfo* down = file_->FindTensor("blk.29.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->type, GgmlType::kQ4_1);
  EXPECT_THAT(down->shape, ElementsAre(1536, 576));
  EXPECT_EQ(down->offset + file_->header_bytes(), 80630848u);  // gguf-py, absolute
  EXPECT_EQ(down->size_bytes, 552960u);

  const GgufTensorInfo* v = file_->FindTensor("blk.9.attn_v.weight");
  ASSERT_NE(v, nullptr);
  EXPECT_THAT(v->shape, ElementsAre(576, 192));
  EXPECT_EQ(v->offset + file_->header_bytes(), 98291008u);
  EXPECT_EQ(v->size_bytes, 69120u);

  EXPECT_EQ(file_->FindTensor("output.weight"), nullptr);  // tied embeddings
  EXPECT_EQ(file_->FindTensor("rope_freqs.weight"), nullptr);
  EXPECT_EQ(file_->tensors().back().name, "output_norm.weight");
}

TEST_F(SmolLm2Test, TensorDataIsInRangeAndMatchesGgufPy) {
  for (const GgufTensorInfo& t : file_->tensors()) {
    const uint8_t* p = file_->TensorData(t);
    EXPECT_GE(p, file_->data() + file_->header_bytes()) << t.name;
    EXPECT_LE(p + t.size_bytes, file_->data() + file_->size()) << t.name;
    EXPECT_EQ(t.offset % file_->alignment(), 0u) << t.name;
  }
  // The last tensor ends exactly at the end of the file.
  const GgufTensorInfo& last = file_->tensors().back();
  EXPECT_EQ(file_->TensorData(last) + last.size_bytes, file_->data() + file_->size());

  auto first_floats = [&](const char* name) {
    const GgufTensorInfo* t = file_->FindTensor(name);
    std::vector<float> v(4);
    if (t != nullptr) std::memcpy(v.data(), file_->TensorData(*t), 16);
    return v;
  };
  EXPECT_THAT(first_floats("output_norm.weight"),
              ElementsAre(1.7578125f, 1.8203125f, 1.78125f, 1.6015625f));
  EXPECT_THAT(first_floats("blk.0.attn_norm.weight"),
              ElementsAre(0.01397705078125f, 0.0238037109375f, -0.019775390625f, -0.0302734375f));
  const uint8_t* embd = file_->TensorData(*file_->FindTensor("token_embd.weight"));
  EXPECT_THAT(std::vector<uint8_t>(embd, embd + 8),
              ElementsAre(0x32, 0x19, 0xd6, 0x0d, 0x13, 0xf7, 0xe5, 0xee));
}

TEST_F(SmolLm2Test, ModelConfig) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ModelConfigFromGguf(*file_));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "Smollm2 135M 8k Lc100K Mix1 Ep2");
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
}

}  // namespace
}  // namespace tessera
