// Tokenizer::FromHfFiles against the Hugging Face `tokenizers` library: the
// goldens in tests/golden/hf_tokenizers/<kind>/ were written by
// scripts/golden/gen_hf_tokenizer_golden.py from small tokenizers trained on
// the tokenizer corpus, one per tokenizer.json layout (GPT-2, Llama-3,
// Qwen2, SmolLM2, Llama-2 SentencePiece-style with Prepend/Replace and with
// Metaspace). Also malformed files and SmolLM2's real vocabulary.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "testing/status_matchers.h"
#include "common/tokenizer/nfc.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_hf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::tessera::testing::StatusIs;
using Json = nlohmann::json;

std::string KindDir(const std::string& kind) {
  return testing::GoldenPath("hf_tokenizers/" + kind);
}

std::unique_ptr<Tokenizer> LoadKind(const std::string& kind) {
  auto t = Tokenizer::FromHfFiles(KindDir(kind) + "/tokenizer.json",
                                  KindDir(kind) + "/tokenizer_config.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

class HfGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGoldenTest, MatchesHuggingFaceOnCorpus) {
  const std::string kind = GetParam();
  if (kind == "qwen2" && !NfcAvailable()) {
    // Such a build refuses the file by name rather than mis-tokenizing it,
    // but the test command installs ICU, so this build is broken.
    EXPECT_THAT(Tokenizer::FromHfFiles(KindDir(kind) + "/tokenizer.json", "").status(),
                StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("NFC needs ICU")));
    FAIL() << "built without ICU (libicu-dev, which scripts/setup.sh installs): no NFC";
  }
  std::unique_ptr<Tokenizer> tok = LoadKind(kind);
  ASSERT_NE(tok, nullptr);
  const Json golden = Json::parse(testing::ReadWholeFile(KindDir(kind) + "/golden.json"));
  ASSERT_EQ(golden["header"]["kind"], kind);
  const Json& cases = golden["cases"];
  ASSERT_GE(cases.size(), 500u);
  int id_mismatches = 0, special_mismatches = 0, decode_mismatches = 0;
  for (const Json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const std::string name = c["name"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok->Encode(text, /*add_special=*/false,
                                                 /*parse_special=*/true);
    if (got != want && ++id_mismatches <= 5) {
      ADD_FAILURE() << kind << " " << name << ": ids " << ::testing::PrintToString(got)
                    << " want " << ::testing::PrintToString(want);
    }
    const auto want_special = c["ids_special"].get<std::vector<int32_t>>();
    if (tok->Encode(text, true, true) != want_special && ++special_mismatches <= 5) {
      ADD_FAILURE() << kind << " " << name << ": add_special ids differ";
    }
    const std::string decoded = tok->Decode(want);
    if (decoded != c["decoded"].get<std::string>() && ++decode_mismatches <= 5) {
      ADD_FAILURE() << kind << " " << name << ": decoded '" << decoded << "' want '"
                    << c["decoded"].get<std::string>() << "'";
    }
  }
  EXPECT_EQ(id_mismatches, 0) << "of " << cases.size();
  EXPECT_EQ(special_mismatches, 0) << "of " << cases.size();
  EXPECT_EQ(decode_mismatches, 0) << "of " << cases.size();
}

INSTANTIATE_TEST_SUITE_P(Kinds, HfGoldenTest,
                         ::testing::Values("gpt2", "llama3", "qwen2", "smollm2", "llama2",
                                           "llama2_metaspace"),
                         [](const auto& info) { return info.param; });

TEST(HfTokenizerTest, ReadsSpecialTokensAndTemplateFromConfig) {
  std::unique_ptr<Tokenizer> llama2 = LoadKind("llama2");
  ASSERT_NE(llama2, nullptr);
  // The script puts <unk> <s> </s> first, then <0x00>..<0xFF>.
  EXPECT_EQ(llama2->bos_id(), 1);
  EXPECT_EQ(llama2->eos_id(), 2);
  EXPECT_TRUE(llama2->add_bos());
  EXPECT_EQ(llama2->token_type(3), TokenType::kByte);
  EXPECT_EQ(llama2->token_text(3 + 0x41), "<0x41>");
  EXPECT_EQ(llama2->token_type(1), TokenType::kControl);
  EXPECT_THAT(llama2->chat_template(), HasSubstr("<|im_start|>"));

  std::unique_ptr<Tokenizer> llama3 = LoadKind("llama3");
  ASSERT_NE(llama3, nullptr);
  // No add_bos_token in its config: taken from the TemplateProcessing.
  EXPECT_TRUE(llama3->add_bos());
  ASSERT_OK_AND_ASSIGN(int32_t begin, llama3->TokenId("<|begin_of_text|>"));
  EXPECT_EQ(llama3->bos_id(), begin);

  std::unique_ptr<Tokenizer> gpt2 = LoadKind("gpt2");
  ASSERT_NE(gpt2, nullptr);
  EXPECT_FALSE(gpt2->add_bos());
  ASSERT_OK_AND_ASSIGN(int32_t eot, gpt2->TokenId("<|endoftext|>"));
  EXPECT_EQ(gpt2->eos_id(), eot);
}

TEST(HfTokenizerTest, Qwen2SplitsDigitsOneByOne) {
  ASSERT_TRUE(NfcAvailable())
      << "built without ICU (libicu-dev, which scripts/setup.sh installs): no NFC";
  std::unique_ptr<Tokenizer> qwen2 = LoadKind("qwen2");
  ASSERT_NE(qwen2, nullptr);
  // Every digit is its own word, so "12345" is five tokens, each the token
  // of one digit (the byte-level text of a digit is the digit itself).
  std::vector<int32_t> want;
  for (const char* digit : {"1", "2", "3", "4", "5"}) {
    ASSERT_OK_AND_ASSIGN(int32_t id, qwen2->TokenId(digit));
    want.push_back(id);
  }
  EXPECT_EQ(qwen2->Encode("12345", false, true), want);
  EXPECT_FALSE(qwen2->add_bos());
  EXPECT_EQ(qwen2->bos_id(), -1);
}

TEST(HfTokenizerTest, NfcNormalizerComposes) {
  ASSERT_TRUE(NfcAvailable())
      << "built without ICU (libicu-dev, which scripts/setup.sh installs): no NFC";
  std::unique_ptr<Tokenizer> qwen2 = LoadKind("qwen2");
  ASSERT_NE(qwen2, nullptr);
  // "e" + U+0301 (combining acute) is NFC U+00E9, so both spellings encode
  // the same.
  EXPECT_EQ(qwen2->Encode("caf\x65\xCC\x81", false, true),
            qwen2->Encode("caf\xC3\xA9", false, true));
  EXPECT_NE(LoadKind("llama3")->Encode("caf\x65\xCC\x81", false, true),
            LoadKind("llama3")->Encode("caf\xC3\xA9", false, true));
}

// A hand-made byte-level vocabulary: a b c, ab, abc; merges "a b" then
// "ab c". "abcab" -> abc ab; "cba" -> c b a.
Json TinyTokenizer(bool pair_merges) {
  Json j = Json::parse(R"({
    "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<|end|>": 5},
              "merges": ["a b", "ab c"]}})");
  if (pair_merges) j["model"]["merges"] = Json::parse(R"([["a", "b"], ["ab", "c"]])");
  return j;
}

class TempFiles {
 public:
  ~TempFiles() {
    for (const std::string& p : paths_) std::remove(p.c_str());
  }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = ::testing::TempDir() + "hf_tok_" + name;
    std::ofstream(path, std::ios::binary) << content;
    paths_.push_back(path);
    return path;
  }

 private:
  std::vector<std::string> paths_;
};

TEST(HfTokenizerTest, AcceptsStringAndPairMerges) {
  TempFiles files;
  for (bool pairs : {false, true}) {
    const std::string path = files.Write(pairs ? "pairs.json" : "strings.json",
                                         TinyTokenizer(pairs).dump());
    ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfFiles(path, ""));
    EXPECT_EQ(tok->Encode("abcab", false, true), (std::vector<int32_t>{4, 3})) << pairs;
    EXPECT_EQ(tok->Encode("cba<|end|>", false, true), (std::vector<int32_t>{2, 1, 0, 5}));
    EXPECT_EQ(tok->bos_id(), -1);
    EXPECT_FALSE(tok->add_bos());
  }
}

struct BadCase {
  std::string name;
  std::function<void(Json*)> mutate;
  absl::StatusCode code;
  std::string message;  // a substring the error must contain
};

TEST(HfTokenizerTest, MalformedFilesNameFileAndKey) {
  const std::vector<BadCase> cases = {
      {"no_model", [](Json* j) { j->erase("model"); }, absl::StatusCode::kInvalidArgument,
       "model is missing"},
      {"no_vocab", [](Json* j) { (*j)["model"].erase("vocab"); },
       absl::StatusCode::kInvalidArgument, "model.vocab is missing"},
      {"no_merges", [](Json* j) { (*j)["model"].erase("merges"); },
       absl::StatusCode::kInvalidArgument, "model.merges is missing"},
      {"unknown_merge", [](Json* j) { (*j)["model"]["merges"][1] = "ab x"; },
       absl::StatusCode::kInvalidArgument, "model.merges[1] names unknown token 'x'"},
      {"bad_merge", [](Json* j) { (*j)["model"]["merges"][0] = 7; },
       absl::StatusCode::kInvalidArgument, "model.merges[0]"},
      {"negative_id", [](Json* j) { (*j)["model"]["vocab"]["c"] = -3; },
       absl::StatusCode::kInvalidArgument, "model.vocab['c'] id -3 is out of range"},
      {"huge_id", [](Json* j) { (*j)["model"]["vocab"]["c"] = 1LL << 40; },
       absl::StatusCode::kInvalidArgument, "model.vocab['c'] id 1099511627776 is out of range"},
      {"duplicate_id", [](Json* j) { (*j)["model"]["vocab"]["c"] = 1; },
       absl::StatusCode::kInvalidArgument, "is already used by token"},
      {"added_clash", [](Json* j) { (*j)["added_tokens"][0]["id"] = 0; },
       absl::StatusCode::kInvalidArgument, "added_tokens[0] id 0 is already used by token 'a'"},
      {"wordpiece", [](Json* j) { (*j)["model"]["type"] = "WordPiece"; },
       absl::StatusCode::kUnimplemented, "model.type 'WordPiece'"},
      {"unknown_regex",
       [](Json* j) {
         (*j)["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
             {"type": "Split", "pattern": {"Regex": "\\w+|\\s+"}, "behavior": "Isolated",
              "invert": false},
             {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
       },
       absl::StatusCode::kUnimplemented, "pre_tokenizer.pretokenizers[0].pattern.Regex '\\w+|\\s+'"},
      {"prefix_space", [](Json* j) { (*j)["pre_tokenizer"]["add_prefix_space"] = true; },
       absl::StatusCode::kUnimplemented, "add_prefix_space"},
  };
  TempFiles files;
  for (const BadCase& c : cases) {
    Json j = TinyTokenizer(false);
    c.mutate(&j);
    const std::string path = files.Write(c.name + ".json", j.dump());
    auto t = Tokenizer::FromHfFiles(path, "");
    EXPECT_THAT(t.status(), StatusIs(c.code, HasSubstr(c.message))) << c.name;
    EXPECT_THAT(t.status().message(), HasSubstr(path)) << c.name;
  }
}

TEST(HfTokenizerTest, BadJsonAndMissingFilesAreErrors) {
  TempFiles files;
  const std::string bad = files.Write("bad.json", "{\"model\": {");
  EXPECT_THAT(Tokenizer::FromHfFiles(bad, "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad + ": invalid JSON")));
  EXPECT_THAT(Tokenizer::FromHfFiles(bad + ".missing", "").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open")));
  const std::string good = files.Write("good.json", TinyTokenizer(false).dump());
  const std::string config = files.Write("config.json", R"({"bos_token": "<s>"})");
  EXPECT_THAT(Tokenizer::FromHfFiles(good, config).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(config + ": bos_token names '<s>', which is not in")));
  const std::string typed = files.Write("typed.json", R"({"add_bos_token": "yes"})");
  EXPECT_THAT(Tokenizer::FromHfFiles(good, typed).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(typed + ": add_bos_token is not a boolean")));
  const std::string dict = files.Write("dict.json",
      R"({"eos_token": {"content": "<|end|>"}, "add_bos_token": false, "chat_template": "T"})");
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfFiles(good, dict));
  EXPECT_EQ(tok->eos_id(), 5);
  EXPECT_EQ(tok->chat_template(), "T");
  EXPECT_TRUE(tok->IsEndOfGeneration(5));
}

// SmolLM2's tokenizer.json is not in the tree, so this writes one in its
// layout (the GGUF's vocabulary and merges; control tokens as special
// added_tokens; Digits + ByteLevel) and checks it against llama.cpp's ids
// for the real vocabulary (tests/golden/tokenizer_smollm2.json).
TEST(HfTokenizerTest, SmolLm2LayoutMatchesLlamaCppOnRealVocabulary) {
  const std::string model_path = testing::TokenizerModelPath();
  ASSERT_FALSE(model_path.empty());
  ASSERT_OK_AND_ASSIGN(auto gguf, GgufFile::Open(model_path));
  ASSERT_OK_AND_ASSIGN(TokenizerData data, ReadTokenizerData(*gguf));
  Json j;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})");
  j["decoder"] = Json::parse(R"({"type": "ByteLevel"})");
  j["model"] = {{"type", "BPE"}, {"vocab", Json::object()}, {"merges", data.merges}};
  j["added_tokens"] = Json::array();
  for (size_t i = 0; i < data.tokens.size(); ++i) {
    j["model"]["vocab"][data.tokens[i]] = i;
    if (data.token_types[i] == static_cast<int32_t>(TokenType::kControl)) {
      j["added_tokens"].push_back({{"id", i}, {"content", data.tokens[i]}, {"special", true}});
    }
  }
  ASSERT_GT(j["added_tokens"].size(), 0u);
  TempFiles files;
  const std::string path = files.Write("smollm2.json", j.dump());
  const std::string config = files.Write("smollm2_config.json",
      R"({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": false})");
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfFiles(path, config));
  ASSERT_OK_AND_ASSIGN(auto from_gguf, Tokenizer::FromGguf(*gguf));
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->eos_id(), from_gguf->eos_id());

  const Json corpus = Json::parse(testing::ReadWholeFile(testing::GoldenPath("tokenizer_corpus.json")));
  const Json golden = Json::parse(testing::ReadWholeFile(testing::GoldenPath("tokenizer_smollm2.json")));
  ASSERT_EQ(corpus["cases"].size(), golden["cases"].size());
  int checked = 0, mismatches = 0;
  for (size_t i = 0; i < corpus["cases"].size(); ++i) {
    const Json& c = corpus["cases"][i];
    if (!c.contains("text")) continue;  // Hugging Face takes only valid UTF-8
    const std::string text = testing::HexDecode(c["hex"].get<std::string>());
    const auto want = golden["cases"][i]["ids"].get<std::vector<int32_t>>();
    ++checked;
    const std::vector<int32_t> got = tok->Encode(text, false, true);
    if ((got != want || from_gguf->Encode(text, false, true) != got) && ++mismatches <= 5) {
      ADD_FAILURE() << c["name"] << ": " << ::testing::PrintToString(got) << " want "
                    << ::testing::PrintToString(want);
    }
  }
  EXPECT_GE(checked, 500);
  EXPECT_EQ(mismatches, 0) << "of " << checked;
}

}  // namespace
}  // namespace tessera
