// OpenHfDirectoryAsGguf on small hand-built directories: the metadata and
// tensor table it presents, the Llama Q/K permutation (checked against an
// index formula written here, independent of the implementation), laziness
// of that permutation, and the errors for directories that contradict their
// config.json. Whole-model equivalence with GGUF files is checked in
// tests/engine/arch_golden_test.cc.
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "common/model_config.h"
#include "common/safetensors/hf_gguf_view.h"
#include "common/safetensors/model_source.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/safetensors/safetensors_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::F32Bytes;
using testing::StatusIs;
using testing::TempDir;
using testing::TestTensor;
using testing::WriteFile;

// 1 layer, hidden 8, 2 heads of 4 dims, 1 KV head, n_ff 4, vocab 6.
constexpr int kD = 8, kHeads = 2, kKvHeads = 1, kHd = 4, kFf = 4, kVocab = 6;

std::string Config(const std::string& arch, const std::string& extra = "") {
  return R"({"architectures": [")" + arch + R"("], "hidden_size": 8, "intermediate_size": 4,
    "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1,
    "rms_norm_eps": 1e-6, "vocab_size": 6, "max_position_embeddings": 64,
    "tie_word_embeddings": false)" + extra + "}";
}

// Element i of a tensor is base + i, so every row is recognisable.
TestTensor Tensor(const std::string& name, std::vector<int64_t> shape, float base) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
  return TestTensor{name, "F32", shape, F32Bytes(v)};
}

std::vector<TestTensor> LlamaTensors() {
  const std::string p = "model.layers.0.";
  return {Tensor("model.embed_tokens.weight", {kVocab, kD}, 0),
          Tensor("model.norm.weight", {kD}, 100),
          Tensor("lm_head.weight", {kVocab, kD}, 200),
          Tensor(p + "input_layernorm.weight", {kD}, 300),
          Tensor(p + "post_attention_layernorm.weight", {kD}, 400),
          Tensor(p + "self_attn.q_proj.weight", {kHeads * kHd, kD}, 1000),
          Tensor(p + "self_attn.k_proj.weight", {kKvHeads * kHd, kD}, 2000),
          Tensor(p + "self_attn.v_proj.weight", {kKvHeads * kHd, kD}, 3000),
          Tensor(p + "self_attn.o_proj.weight", {kD, kHeads * kHd}, 4000),
          Tensor(p + "mlp.gate_proj.weight", {kFf, kD}, 5000),
          Tensor(p + "mlp.up_proj.weight", {kFf, kD}, 6000),
          Tensor(p + "mlp.down_proj.weight", {kD, kFf}, 7000)};
}

class HfGgufViewTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& config,
                                                 const std::vector<TestTensor>& tensors) {
    WriteFile(dir_.File("config.json"), config);
    WriteFile(dir_.File("model.safetensors"), testing::WriteSafetensors(tensors));
    return OpenModelFile(dir_.path());
  }
  TempDir dir_;
};

float At(const GgufFile& f, const std::string& name, int64_t i) {
  const GgufTensorInfo* t = f.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  float v;
  std::memcpy(&v, f.TensorData(*t) + 4 * i, 4);
  return v;
}

TEST_F(HfGgufViewTest, PresentsLlamaMetadataAndTensorsInGgufTerms) {
  ASSERT_OK_AND_ASSIGN(auto f, Open(Config("LlamaForCausalLM"), LlamaTensors()));
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ModelConfigFromGguf(*f));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_layer, 1);
  EXPECT_EQ(c.n_embd, kD);
  EXPECT_EQ(c.n_kv_head, kKvHeads);
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  const GgufTensorInfo* o = f->FindTensor("blk.0.attn_output.weight");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->shape, (std::vector<int64_t>{kHeads * kHd, kD}));  // ne0 = columns
  // Zero-copy tensors are the file's bytes in place.
  EXPECT_EQ(At(*f, "blk.0.ffn_down.weight", 5), 7005.0f);
  EXPECT_EQ(At(*f, "output.weight", 47), 247.0f);
}

TEST_F(HfGgufViewTest, PermutesLlamaQueryAndKeyRowsLikeTheConverter) {
  ASSERT_OK_AND_ASSIGN(auto f, Open(Config("LlamaForCausalLM"), LlamaTensors()));
  // GGUF row r of head h = r / hd, j = r % hd comes from HF row
  // h*hd + (j odd ? hd/2 : 0) + j/2 (convert_hf_to_gguf's reshape/swapaxes).
  for (const auto& [name, base, heads] :
       std::vector<std::tuple<std::string, float, int>>{{"blk.0.attn_q.weight", 1000, kHeads},
                                                        {"blk.0.attn_k.weight", 2000, kKvHeads}}) {
    for (int r = 0; r < heads * kHd; ++r) {
      const int h = r / kHd, j = r % kHd;
      const int from = h * kHd + (j % 2) * (kHd / 2) + j / 2;
      for (int col = 0; col < kD; ++col) {
        ASSERT_EQ(At(*f, name, r * kD + col), base + from * kD + col) << name << " row " << r;
      }
    }
  }
  // V is not permuted.
  EXPECT_EQ(At(*f, "blk.0.attn_v.weight", kD), 3000.0f + kD);
}

TEST_F(HfGgufViewTest, Qwen2KeepsRowOrderAndMapsBiases) {
  std::vector<TestTensor> t = LlamaTensors();
  const std::string p = "model.layers.0.";
  t.push_back(Tensor(p + "self_attn.q_proj.bias", {kHeads * kHd}, 8000));
  t.push_back(Tensor(p + "self_attn.k_proj.bias", {kKvHeads * kHd}, 8100));
  t.push_back(Tensor(p + "self_attn.v_proj.bias", {kKvHeads * kHd}, 8200));
  ASSERT_OK_AND_ASSIGN(auto f, Open(Config("Qwen2ForCausalLM"), t));
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ModelConfigFromGguf(*f));
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_TRUE(c.rope_neox);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_EQ(At(*f, "blk.0.attn_q.weight", kD + 1), 1000.0f + kD + 1);
  EXPECT_EQ(At(*f, "blk.0.attn_k.bias", 3), 8103.0f);
}

TEST_F(HfGgufViewTest, ShardedDirectoryPresentsTheSameTensors) {
  const std::vector<TestTensor> all = LlamaTensors();
  ASSERT_OK_AND_ASSIGN(auto single, Open(Config("LlamaForCausalLM"), all));
  // The same tensors split over two shards named by an index.
  TempDir sharded;
  std::vector<TestTensor> first(all.begin(), all.begin() + 5), second(all.begin() + 5, all.end());
  WriteFile(sharded.File("config.json"), Config("LlamaForCausalLM"));
  WriteFile(sharded.File("model-00001-of-00002.safetensors"), testing::WriteSafetensors(first));
  WriteFile(sharded.File("model-00002-of-00002.safetensors"), testing::WriteSafetensors(second));
  std::string index = R"({"metadata": {}, "weight_map": {)";
  for (size_t i = 0; i < all.size(); ++i) {
    index += (i ? "," : "") + std::string("\"") + all[i].name + "\": \"model-0000" +
             (i < 5 ? "1" : "2") + "-of-00002.safetensors\"";
  }
  index += "}}";
  WriteFile(sharded.File("model.safetensors.index.json"), index);
  ASSERT_OK_AND_ASSIGN(auto split, OpenModelFile(sharded.path()));
  ASSERT_EQ(split->tensors().size(), single->tensors().size());
  for (const GgufTensorInfo& t : single->tensors()) {
    const GgufTensorInfo* u = split->FindTensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(u->shape, t.shape) << t.name;
    ASSERT_EQ(u->size_bytes, t.size_bytes) << t.name;
    EXPECT_EQ(std::memcmp(split->TensorData(*u), single->TensorData(t), t.size_bytes), 0)
        << t.name;
  }
}

TEST_F(HfGgufViewTest, ShapeContradictingConfigNamesTensorAndKeys) {
  std::vector<TestTensor> t = LlamaTensors();
  t[9] = Tensor("model.layers.0.mlp.gate_proj.weight", {kFf + 1, kD}, 0);
  EXPECT_THAT(Open(Config("LlamaForCausalLM"), t),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'model.layers.0.mlp.gate_proj.weight'"),
                             HasSubstr("[5, 8]"), HasSubstr("intermediate_size"))));
}

TEST_F(HfGgufViewTest, MissingTensorIsNotFound) {
  std::vector<TestTensor> t = LlamaTensors();
  t.erase(t.begin() + 10);  // up_proj
  EXPECT_THAT(Open(Config("LlamaForCausalLM"), t),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("'model.layers.0.mlp.up_proj.weight'")));
}

TEST_F(HfGgufViewTest, UnusedTensorIsRefusedNotIgnored) {
  std::vector<TestTensor> t = LlamaTensors();
  t.push_back(Tensor("model.layers.0.self_attn.q_norm.weight", {kHd}, 0));
  EXPECT_THAT(Open(Config("LlamaForCausalLM"), t),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("'model.layers.0.self_attn.q_norm.weight'")));
  // A rotary cache buffer some checkpoints carry is not a weight: fine.
  t.back() = Tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {kHd / 2}, 0);
  EXPECT_THAT(Open(Config("LlamaForCausalLM"), t).status(), testing::IsOk());
}

TEST_F(HfGgufViewTest, BadConfigIsReportedWithItsKey) {
  EXPECT_THAT(Open(Config("LlamaForCausalLM", R"(, "num_key_value_heads": 3)"), LlamaTensors()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_key_value_heads")));
}

TEST_F(HfGgufViewTest, ModelDirectoryWithoutTokenizerJsonIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto f, Open(Config("LlamaForCausalLM"), LlamaTensors()));
  EXPECT_THAT(OpenModelTokenizer(dir_.path(), *f),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("tokenizer.json")));
}

}  // namespace
}  // namespace tessera
