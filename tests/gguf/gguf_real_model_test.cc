// Parses the real SmolLM2-135M-Instruct Q4_1 file. Every expected value
// comes from tests/golden/smollm2_gguf.json, which
// scripts/golden/gen_gguf_golden.py writes by reading the same file with
// gguf-py (an independent implementation), not from our own parser.
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

using ::nlohmann::json;
using ::testing::ElementsAreArray;
using ::testing::SizeIs;

class SmolLm2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(testing::GoldenPath("smollm2_gguf.json"));
    golden_ = new json(json::parse(in, nullptr, /*allow_exceptions=*/false));
    std::string path = testing::RealModelPath();
    if (path.empty()) return;
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(file).value().release();
  }
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
    delete golden_;
    golden_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(golden_->is_object()) << "tests/golden/smollm2_gguf.json is missing or invalid";
    if (file_ == nullptr) GTEST_FAIL() << "the real model could not be opened";
  }
  static const json& G() { return *golden_; }
  static const GgufFile* file_;
  static json* golden_;
};
const GgufFile* SmolLm2Test::file_ = nullptr;
json* SmolLm2Test::golden_ = nullptr;

std::string HexOf(const uint8_t* p, size_t n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(p), n));
}

TEST_F(SmolLm2Test, HeaderAndCounts) {
  const json& h = G()["header"];
  EXPECT_EQ(file_->version(), h["version"].get<uint32_t>());
  EXPECT_EQ(file_->size(), h["file_bytes"].get<uint64_t>());
  EXPECT_EQ(file_->alignment(), h["alignment"].get<uint64_t>());
  EXPECT_EQ(file_->header_bytes(), h["data_offset"].get<uint64_t>());
  EXPECT_THAT(file_->tensors(), SizeIs(h["tensor_count"].get<size_t>()));
  EXPECT_THAT(file_->Keys(), SizeIs(h["key_count"].get<size_t>()));
  EXPECT_EQ(file_->Keys().front(), h["first_key"].get<std::string>());
  EXPECT_EQ(file_->Keys().back(), h["last_key"].get<std::string>());
}

// Every scalar key, read through the accessor of its JSON type.
TEST_F(SmolLm2Test, EveryScalarKeyAsGgufPyReadsIt) {
  int checked = 0;
  for (const auto& [key, want] : G()["scalars"].items()) {
    if (want.is_string()) {
      EXPECT_EQ(file_->GetString(key).value_or("<error>"), want.get<std::string>()) << key;
    } else if (want.is_boolean()) {
      ASSERT_OK_AND_ASSIGN(bool got, file_->GetBool(key));
      EXPECT_EQ(got, want.get<bool>()) << key;
    } else if (want.is_number_float()) {
      ASSERT_OK_AND_ASSIGN(double got, file_->GetFloat(key));
      EXPECT_EQ(got, want.get<double>()) << key;
    } else {
      absl::StatusOr<uint64_t> u = file_->GetUint(key);
      const int64_t got = u.ok() ? static_cast<int64_t>(*u) : file_->GetInt(key).value_or(-1);
      EXPECT_EQ(got, want.get<int64_t>()) << key;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 28);
}

TEST_F(SmolLm2Test, TokenizerArrays) {
  const json& t = G()["tokenizer"];
  ASSERT_OK_AND_ASSIGN(auto tokens, file_->GetStringArray("tokenizer.ggml.tokens"));
  ASSERT_THAT(tokens, SizeIs(t["token_count"].get<size_t>()));
  const auto head = t["tokens_head"].get<std::vector<std::string>>();
  EXPECT_EQ(std::vector<std::string>(tokens.begin(), tokens.begin() + head.size()), head);
  EXPECT_EQ(tokens.back(), t["token_last"].get<std::string>());

  ASSERT_OK_AND_ASSIGN(auto merges, file_->GetStringArray("tokenizer.ggml.merges"));
  ASSERT_THAT(merges, SizeIs(t["merge_count"].get<size_t>()));
  const auto merges_head = t["merges_head"].get<std::vector<std::string>>();
  EXPECT_EQ(std::vector<std::string>(merges.begin(), merges.begin() + merges_head.size()),
            merges_head);

  ASSERT_OK_AND_ASSIGN(auto types, file_->GetIntArray("tokenizer.ggml.token_type"));
  ASSERT_THAT(types, SizeIs(t["token_type_count"].get<size_t>()));
  for (const auto& [index, type] : t["token_types"].items()) {
    EXPECT_EQ(types[std::stoul(index)], type.get<int64_t>()) << index;
  }
  EXPECT_EQ(file_->GetArrayLength("tokenizer.ggml.tokens").value(),
            t["token_count"].get<uint64_t>());
}

TEST_F(SmolLm2Test, TensorTypesShapesAndPlacement) {
  std::map<std::string, int> counts;
  for (const GgufTensorInfo& t : file_->tensors()) ++counts[GgmlTypeName(t.type)];
  std::map<std::string, int> want;
  for (const auto& [type, n] : G()["tensor_type_counts"].items()) want[type] = n.get<int>();
  EXPECT_EQ(counts, want);

  for (const auto& [name, w] : G()["tensors"].items()) {
    const GgufTensorInfo* t = file_->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(GgmlTypeName(t->type), w["type"].get<std::string>()) << name;
    EXPECT_THAT(t->shape, ElementsAreArray(w["shape"].get<std::vector<int64_t>>())) << name;
    EXPECT_EQ(t->offset + file_->header_bytes(), w["absolute_offset"].get<uint64_t>()) << name;
    EXPECT_EQ(t->size_bytes, w["bytes"].get<uint64_t>()) << name;
    EXPECT_EQ(HexOf(file_->TensorData(*t), 16), w["first_bytes_hex"].get<std::string>()) << name;
    if (w.contains("first_floats")) {
      std::vector<float> v(4);
      std::memcpy(v.data(), file_->TensorData(*t), 16);
      EXPECT_THAT(v, ElementsAreArray(w["first_floats"].get<std::vector<float>>())) << name;
    }
  }
  EXPECT_EQ(file_->FindTensor("output.weight"), nullptr);  // tied embeddings
  EXPECT_EQ(file_->FindTensor("rope_freqs.weight"), nullptr);
  EXPECT_EQ(file_->tensors().back().name, G()["last_tensor"].get<std::string>());
}

TEST_F(SmolLm2Test, TensorDataIsInRange) {
  for (const GgufTensorInfo& t : file_->tensors()) {
    const uint8_t* p = file_->TensorData(t);
    EXPECT_GE(p, file_->data() + file_->header_bytes()) << t.name;
    EXPECT_LE(p + t.size_bytes, file_->data() + file_->size()) << t.name;
    EXPECT_EQ(t.offset % file_->alignment(), 0u) << t.name;
  }
  // The last tensor ends exactly at the end of the file.
  const GgufTensorInfo& last = file_->tensors().back();
  EXPECT_EQ(file_->TensorData(last) + last.size_bytes, file_->data() + file_->size());
}

// The config is the keys gguf-py read, mapped as llama.cpp maps them.
TEST_F(SmolLm2Test, ModelConfig) {
  const json& k = G()["scalars"];
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ModelConfigFromGguf(*file_));
  EXPECT_EQ(c.architecture, k["general.architecture"].get<std::string>());
  EXPECT_EQ(c.name, k["general.name"].get<std::string>());
  EXPECT_EQ(c.n_layer, k["llama.block_count"].get<int>());
  EXPECT_EQ(c.n_embd, k["llama.embedding_length"].get<int>());
  EXPECT_EQ(c.n_ff, k["llama.feed_forward_length"].get<int>());
  EXPECT_EQ(c.n_head, k["llama.attention.head_count"].get<int>());
  EXPECT_EQ(c.n_kv_head, k["llama.attention.head_count_kv"].get<int>());
  EXPECT_EQ(c.head_dim, c.n_embd / c.n_head);
  EXPECT_EQ(c.rope_dim, k["llama.rope.dimension_count"].get<int>());
  EXPECT_EQ(c.vocab_size, k["llama.vocab_size"].get<int64_t>());
  EXPECT_EQ(c.context_length, k["llama.context_length"].get<int64_t>());
  EXPECT_EQ(c.rope_freq_base, k["llama.rope.freq_base"].get<float>());
  EXPECT_EQ(c.rope_freq_scale, 1.0f);  // no llama.rope.scale_linear key
  EXPECT_FALSE(k.contains("llama.rope.scale_linear"));
  EXPECT_EQ(c.rms_eps, k["llama.attention.layer_norm_rms_epsilon"].get<float>());
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.has_rope_freqs);
}

}  // namespace
}  // namespace tessera
