// OpenModelTokenizer and ModelSamplingDefaults on a Hugging Face directory
// with a generation_config.json: its eos_token_id (an id or a list) ends
// generation as well (without the file, config.json's does), its sampling
// values become the model's defaults, and a malformed file or key is refused
// naming both. The directory is a copy of tests/golden/arch/llama3_hf (a
// 320-token byte-level vocabulary with <|bos|> 318 and <|eos|> 319, no
// tokenizer_config.json, and config.json saying eos_token_id 319) with the
// generation config written per test.
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/safetensors/model_source.h"
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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class GenerationConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string src = std::string(TESSERA_SOURCE_DIR) + "/tests/golden/arch/llama3_hf/";
    for (const char* name : {"config.json", "tokenizer.json", "model.safetensors"}) {
      const std::string bytes = ReadAll(src + name);
      ASSERT_FALSE(bytes.empty()) << src << name;
      WriteFile(dir_.File(name), bytes);
    }
  }

  // Writes generation_config.json (unless `json` is null) and opens the
  // directory's tokenizer.
  absl::StatusOr<std::unique_ptr<Tokenizer>> Open(const char* json) {
    if (json != nullptr) WriteFile(dir_.File("generation_config.json"), json);
    auto file = OpenModelFile(dir_.path());
    if (!file.ok()) return file.status();
    return OpenModelTokenizer(dir_.path(), **file);
  }

  TempDir dir_;
};

TEST_F(GenerationConfigTest, WithoutTheFileConfigJsonEosEnds) {
  ASSERT_OK_AND_ASSIGN(auto tok, Open(nullptr));
  ASSERT_EQ(tok->vocab_size(), 320);
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    EXPECT_EQ(tok->IsEndOfGeneration(id), id == 319) << id;
  }
}

TEST_F(GenerationConfigTest, SamplingValuesBecomeTheModelsDefaults) {
  ASSERT_OK_AND_ASSIGN(SamplingDefaults none, ModelSamplingDefaults(dir_.path()));
  EXPECT_TRUE(none.empty());
  WriteFile(dir_.File("generation_config.json"),
            R"({"do_sample": true, "temperature": 0.6, "top_p": 0.9, "top_k": 20,
                "repetition_penalty": null, "eos_token_id": 319})");
  ASSERT_OK_AND_ASSIGN(SamplingDefaults d, ModelSamplingDefaults(dir_.path()));
  EXPECT_EQ(d.temperature, 0.6f);
  EXPECT_EQ(d.top_p, 0.9f);
  EXPECT_EQ(d.top_k, 20);
  EXPECT_FALSE(d.min_p.has_value());
  EXPECT_FALSE(d.repetition_penalty.has_value());
  const SamplingParams p = d.Apply(SamplingParams{});
  EXPECT_EQ(p.temperature, 0.6f);
  EXPECT_EQ(p.min_p, SamplingParams{}.min_p);  // not in the file: Tessera's default
  // A GGUF model has no generation config.
  ASSERT_OK_AND_ASSIGN(SamplingDefaults gguf,
                       ModelSamplingDefaults(std::string(TESSERA_SOURCE_DIR) +
                                             "/tests/golden/arch/llama3.gguf"));
  EXPECT_TRUE(gguf.empty());
}

TEST_F(GenerationConfigTest, RejectsBadSamplingValuesNamingTheKey) {
  const auto bad = [&](const char* json, const std::string& what) {
    WriteFile(dir_.File("generation_config.json"), json);
    EXPECT_THAT(ModelSamplingDefaults(dir_.path()),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("generation_config.json"), HasSubstr(what))))
        << json;
  };
  bad(R"({"temperature": "hot"})", "temperature");
  bad(R"({"top_k": 2.5})", "top_k");
  bad(R"({"top_p": 1.5})", "top_p");
  bad(R"({"temperature": -1})", "temperature");
  bad("{", "not valid JSON");
}

TEST_F(GenerationConfigTest, ListedIdsEndGeneration) {
  ASSERT_OK_AND_ASSIGN(auto tok, Open(R"({"bos_token_id": 318, "eos_token_id": [319, 7, 100],
                                          "do_sample": true})"));
  EXPECT_TRUE(tok->IsEndOfGeneration(319));
  EXPECT_TRUE(tok->IsEndOfGeneration(7));
  EXPECT_TRUE(tok->IsEndOfGeneration(100));
  EXPECT_FALSE(tok->IsEndOfGeneration(8));
  EXPECT_FALSE(tok->IsEndOfGeneration(318));
  EXPECT_EQ(tok->eos_id(), -1);  // the tokenizer's own EOS is not invented
}

TEST_F(GenerationConfigTest, SingleIdEndsGeneration) {
  ASSERT_OK_AND_ASSIGN(auto tok, Open(R"({"eos_token_id": 7})"));
  EXPECT_TRUE(tok->IsEndOfGeneration(7));
  EXPECT_FALSE(tok->IsEndOfGeneration(319));
}

TEST_F(GenerationConfigTest, MissingOrNullKeyAddsNothing) {
  ASSERT_OK_AND_ASSIGN(auto tok, Open(R"({"temperature": 0.6})"));
  EXPECT_FALSE(tok->IsEndOfGeneration(7));
  ASSERT_OK_AND_ASSIGN(auto null_tok, Open(R"({"eos_token_id": null})"));
  EXPECT_FALSE(null_tok->IsEndOfGeneration(7));
}

TEST_F(GenerationConfigTest, RejectsBadJsonAndIllTypedIds) {
  const auto names = [](const std::string& what) {
    return StatusIs(absl::StatusCode::kInvalidArgument,
                    AllOf(HasSubstr("generation_config.json"), HasSubstr(what)));
  };
  EXPECT_THAT(Open(R"({"eos_token_id": [319,)"), names("not valid JSON"));
  EXPECT_THAT(Open("[319]"), names("not a JSON object"));
  EXPECT_THAT(Open(R"({"eos_token_id": "319"})"),
              names("eos_token_id must be a token id or a list of token ids"));
  EXPECT_THAT(Open(R"({"eos_token_id": [319, "7"]})"), names("eos_token_id[1] must be an integer"));
  EXPECT_THAT(Open(R"({"eos_token_id": [7.5]})"), names("eos_token_id[0] must be an integer"));
  EXPECT_THAT(Open(R"({"eos_token_id": 320})"),
              names("eos_token_id = 320 is outside the tokenizer's vocabulary of 320"));
  EXPECT_THAT(Open(R"({"eos_token_id": [-1]})"), names("eos_token_id[0] = -1"));
  EXPECT_THAT(Open(R"({"eos_token_id": [18446744073709551615]})"),
              names("eos_token_id[0] = 18446744073709551615"));
}

}  // namespace
}  // namespace tessera
