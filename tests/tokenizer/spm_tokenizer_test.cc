// SentencePiece vocabularies: GGUF "llama" vocabularies against llama.cpp,
// hand-worked score merges, and streaming equal to Decode for both the GGUF
// and the tokenizer.json SentencePiece kinds; EncodeSegments and EncodeChat
// on cut text and chat prompts.
//
// tests/golden/spm_gguf/ was written by scripts/golden/gen_spm_gguf_golden.py:
// a vocabulary built from the tokenizer corpus (with characters left out so
// that byte fallback happens), stored as two tensor-less GGUF files, and
// llama-cpp-python's tokenize / llama_detokenize of every corpus case.
#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "testing/status_matchers.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::tessera::testing::GoldenPath;
using ::tessera::testing::HexDecode;
using ::tessera::testing::HexEncode;
using ::tessera::testing::ReadWholeFile;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::unique_ptr<Tokenizer> LoadGguf(const std::string& name) {
  auto file = GgufFile::Open(GoldenPath("spm_gguf/" + name));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

// What an IncrementalDetokenizer streams for `ids`, all pieces joined.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  IncrementalDetokenizer detok(tok);
  std::string out;
  for (int32_t id : ids) out += detok.Push(id);
  return out + detok.Flush();
}

// Decode() made well-formed the way the detokenizer promises to.
std::string Sanitized(const std::string& text) {
  std::string out;
  AppendValidUtf8(text, &out);
  return out;
}

class SpmGgufGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = LoadGguf("spm_llama.gguf");
    noprefix_ = LoadGguf("spm_llama_noprefix.gguf");
    ASSERT_NE(tok_, nullptr);
    ASSERT_NE(noprefix_, nullptr);
    corpus_ = Json::parse(ReadWholeFile(GoldenPath("tokenizer_corpus.json")));
    golden_ = Json::parse(ReadWholeFile(GoldenPath("spm_gguf/golden.json")));
    ASSERT_EQ(corpus_["cases"].size(), golden_["cases"].size())
        << "golden file is stale: rerun scripts/golden/gen_spm_gguf_golden.py";
  }

  // A case's field, or what the generator leaves out in its place.
  static std::vector<int32_t> Ids(const Json& c, const std::string& key,
                                  const std::vector<int32_t>& omitted) {
    return c.contains(key) ? c[key].get<std::vector<int32_t>>() : omitted;
  }
  static std::string Text(const Json& c, const std::string& key, const std::string& omitted) {
    return c.contains(key) ? HexDecode(c[key].get<std::string>()) : omitted;
  }

  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Tokenizer> noprefix_;
  Json corpus_;
  Json golden_;
};

TEST_F(SpmGgufGoldenTest, ReadsVocabularyLikeLlamaCpp) {
  const Json& v = golden_["vocab"];
  EXPECT_EQ(tok_->vocab_size(), v["n_vocab"].get<int32_t>());
  EXPECT_EQ(tok_->bos_id(), v["bos"].get<int32_t>());
  EXPECT_EQ(tok_->eos_id(), v["eos"].get<int32_t>());
  EXPECT_EQ(tok_->add_bos(), v["add_bos"].get<bool>());
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok_->vocab_size(); ++id) {
    if (tok_->IsEndOfGeneration(id)) eog.push_back(id);
  }
  EXPECT_EQ(eog, v["eog_ids"].get<std::vector<int32_t>>());
  // The script's layout: <unk> <s> </s> ..., then <0x00> at id 9.
  EXPECT_EQ(tok_->token_type(0), TokenType::kUnknown);
  EXPECT_EQ(tok_->token_type(9 + 0x41), TokenType::kByte);
  EXPECT_EQ(tok_->TokenToPiece(9 + 0x41), "A");
  EXPECT_EQ(tok_->TokenToPiece(1), "");
  EXPECT_EQ(tok_->TokenToPiece(1, /*render_special=*/true), "<s>");
}

TEST_F(SpmGgufGoldenTest, MatchesLlamaCppOnCorpus) {
  const std::vector<int32_t> bos = {tok_->bos_id()};
  int checked = 0;
  int mismatches[7] = {};  // ids, ids_bos, ids_special, decoded, decoded_bos, noprefix x2
  auto report = [&](int kind, const std::string& name, const std::string& what) {
    if (++mismatches[kind] <= 3) ADD_FAILURE() << name << ": " << what;
  };
  for (size_t i = 0; i < golden_["cases"].size(); ++i) {
    const Json& c = golden_["cases"][i];
    const std::string name = c["name"].get<std::string>();
    ASSERT_EQ(corpus_["cases"][i]["name"].get<std::string>(), name) << "stale golden";
    const std::string text = HexDecode(corpus_["cases"][i]["hex"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> ids_bos = bos;
    ids_bos.insert(ids_bos.end(), ids.begin(), ids.end());
    ids_bos = Ids(c, "ids_bos", ids_bos);
    const std::string decoded = HexDecode(c["decoded_hex"].get<std::string>());
    const auto got = tok_->Encode(text, /*add_special=*/false, /*parse_special=*/false);
    if (got != ids) {
      report(0, name, "ids " + ::testing::PrintToString(got) + " want " +
                          ::testing::PrintToString(ids));
    }
    if (tok_->Encode(text, true, false) != ids_bos) report(1, name, "ids with BOS differ");
    if (tok_->Encode(text, false, true) != Ids(c, "ids_special", ids)) {
      report(2, name, "parse_special ids differ");
    }
    if (tok_->Decode(ids) != decoded) {
      report(3, name, "decoded '" + HexEncode(tok_->Decode(ids)) + "' want '" +
                          HexEncode(decoded) + "'");
    }
    if (tok_->Decode(ids_bos) != Text(c, "decoded_bos_hex", " " + decoded)) {
      report(4, name, "decoded with BOS '" + tok_->Decode(ids_bos) + "'");
    }
    const auto nop_ids = Ids(c, "noprefix_ids", ids);
    if (noprefix_->Encode(text, false, false) != nop_ids) report(5, name, "noprefix ids differ");
    if (noprefix_->Decode(nop_ids) != Text(c, "noprefix_decoded_hex", decoded)) {
      report(6, name, "noprefix decoded '" + noprefix_->Decode(nop_ids) + "'");
    }
    ++checked;
  }
  EXPECT_EQ(checked, 1037);
  for (int kind = 0; kind < 7; ++kind) {
    EXPECT_EQ(mismatches[kind], 0) << "check " << kind << ": " << mismatches[kind] << " of "
                                   << checked << " cases differ";
  }
}

// Byte offsets cutting `text` into up to four pieces.
std::vector<std::string_view> RandomPieces(std::string_view text, std::mt19937* rng) {
  std::vector<size_t> cuts = {0, text.size()};
  for (size_t n = (*rng)() % 4; n > 0 && !text.empty(); --n) {
    cuts.push_back((*rng)() % (text.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    pieces.push_back(text.substr(cuts[i], cuts[i + 1] - cuts[i]));
  }
  return pieces;
}

TEST_F(SpmGgufGoldenTest, EncodeSegmentsMatchesLlamaCppOnCutText) {
  // Each case cut at random byte offsets (inside characters too) must still
  // give llama.cpp's ids for the whole text; encoding the pieces one by one
  // would not (every piece gets its own U+2581 and merges stop at the cuts).
  std::mt19937 rng(11);
  int mismatches = 0, piecewise_differs = 0, special_checked = 0;
  const std::vector<int32_t> bos = {tok_->bos_id()};
  for (size_t i = 0; i < golden_["cases"].size(); ++i) {
    const Json& c = golden_["cases"][i];
    const std::string text = HexDecode(corpus_["cases"][i]["hex"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> ids_bos = bos;
    ids_bos.insert(ids_bos.end(), ids.begin(), ids.end());
    ids_bos = Ids(c, "ids_bos", ids_bos);
    const std::vector<std::string_view> pieces = RandomPieces(text, &rng);
    std::vector<TextSegment> plain, alternating;
    std::vector<int32_t> piecewise;
    for (size_t k = 0; k < pieces.size(); ++k) {
      plain.push_back({pieces[k], false});
      alternating.push_back({pieces[k], k % 2 == 0});
      for (int32_t id : tok_->Encode(pieces[k], false, false)) piecewise.push_back(id);
    }
    bool ok = tok_->EncodeSegments(plain, false) == ids &&
              tok_->EncodeSegments(plain, true) == ids_bos &&
              noprefix_->EncodeSegments(plain, false) == Ids(c, "noprefix_ids", ids);
    // Where parse_special changes nothing the text holds no special-token
    // text, so segments that parse it must agree too.
    if (!c.contains("ids_special")) {
      ok = ok && tok_->EncodeSegments(alternating, false) == ids;
      ++special_checked;
    }
    if (!ok && ++mismatches <= 3) ADD_FAILURE() << c["name"] << ": " << HexEncode(text);
    piecewise_differs += piecewise != ids;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(special_checked, 900);
  EXPECT_GT(piecewise_differs, 500);
}

TEST_F(SpmGgufGoldenTest, StreamingEqualsDecode) {
  // Each case's llama.cpp ids, with and without BOS, streamed token by
  // token, must give exactly the (well-formed) golden decode.
  int mismatches = 0;
  for (const Json& c : golden_["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const std::string decoded = HexDecode(c["decoded_hex"].get<std::string>());
    if (Stream(*tok_, ids) != Sanitized(decoded) && ++mismatches <= 3) {
      ADD_FAILURE() << c["name"] << ": streamed '" << Stream(*tok_, ids) << "'";
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The leading space of a generated sequence's first piece is dropped.
  const std::vector<int32_t> hello = tok_->Encode("Hello world", false, false);
  ASSERT_GE(hello.size(), 2u);
  EXPECT_EQ(tok_->TokenToPiece(hello[0]), " Hello");
  EXPECT_EQ(Stream(*tok_, hello), "Hello world");
}

TEST_F(SpmGgufGoldenTest, RandomTextRoundTrip) {
  // Valid UTF-8 without special-token text or a literal U+2581 comes back
  // from Decode(Encode()) unchanged: spaces via U+2581 pieces, the rest via
  // pieces or byte fallback. (Invalid UTF-8 need not: a stray lead byte
  // swallows the bytes of a following U+2581, which then come back raw, as
  // in llama.cpp.)
  const std::vector<std::string> kAlphabet = {
      "a", "b", "e", " ", " ", "\n", "Z", ".", "\xC3\xA9" /* é */, "\xC3\xB6" /* ö */,
      "\xE4\xBD\xA0" /* 你 */, "\xF0\x9F\x98\x80" /* 😀 */, "\t", "th", "ing"};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    for (size_t n = rng() % 16; n > 0; --n) text += kAlphabet[rng() % kAlphabet.size()];
    const std::vector<int32_t> ids = tok_->Encode(text, /*add_special=*/true, false);
    ASSERT_EQ(tok_->Decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), text)
        << HexEncode(text);
    ASSERT_EQ(Stream(*tok_, std::vector<int32_t>(ids.begin() + 1, ids.end())), text);
    ASSERT_EQ(noprefix_->Decode(noprefix_->Encode(text, false, false)), text) << HexEncode(text);
  }
}

// A hand-made "llama" vocabulary whose merges can be followed on paper.
//   0 <unk>  1 <s>  2 </s>  3 <0x41> ("A" as a byte)  4 <0xC3>  5 <0xA9>
//   6 ▁  7 a  8 b  9 c  10 ab (score 1)  11 bc (score 2)  12 ▁a (score 0)
//   13 abc (score 5)  14 ▁ab (score 3)
TokenizerData HandVocab() {
  TokenizerData d;
  d.source = "hand-spm";
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", "\xE2\x96\x81",
              "a", "b", "c", "ab", "bc", "\xE2\x96\x81" "a", "abc", "\xE2\x96\x81" "ab"};
  d.token_types = {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  d.scores = {0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 1, 2, 0, 5, 3};
  d.spm.prefix = TokenizerData::SpmOptions::Prefix::kEveryFragment;
  d.spm.leading_space = TokenizerData::SpmOptions::LeadingSpace::kStripFromFirstToken;
  return d;
}

TEST(SpmScoreTest, MergesHighestScoreFirst) {
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(HandVocab()));
  // "abc" -> ▁ a b c. Candidates: ▁a (0), ab (1), bc (2): bc merges first,
  // leaving ▁ a bc; then a+bc = abc (5) beats ▁a (0): ▁ abc. (Merging
  // leftmost-first would give ▁a b c, then ▁ab (3) and c.)
  EXPECT_EQ(t->Encode("abc", false, false), (std::vector<int32_t>{6, 13}));
  // "ab": ▁a (0) vs ab (1): ab first, then ▁ + ab -> ▁ab (3).
  EXPECT_EQ(t->Encode("ab", false, false), (std::vector<int32_t>{14}));
  // No prefix after the first character, so "a b" is ▁a ▁ b.
  EXPECT_EQ(t->Encode("a b", false, false), (std::vector<int32_t>{12, 6, 8}));
  // Defaults when the GGUF keys are absent: unk 0, bos 1, eos 2, add_bos.
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->Encode("ab", true, false), (std::vector<int32_t>{1, 14}));
}

TEST(SpmScoreTest, TiesGoToTheLeftmostPair) {
  TokenizerData d = HandVocab();
  d.scores[10] = 2;   // ab now ties with bc
  d.scores[13] = -5;  // and abc is unattractive
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(d));
  // ▁ a b c: ab and bc tie at 2; ab is further left: ▁ ab c. Then ▁ab (3)
  // beats abc (-5): ▁ab c. (Taking bc would have led to ▁a bc.)
  EXPECT_EQ(t->Encode("abc", false, false), (std::vector<int32_t>{14, 9}));
}

TEST(SpmScoreTest, FallsBackToBytesThenUnknown) {
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(HandVocab()));
  // "é" (C3 A9) is not a token: its bytes' tokens. "A" has only <0x41>.
  EXPECT_EQ(t->Encode("\xC3\xA9" "A", false, false), (std::vector<int32_t>{6, 4, 5, 3}));
  // "z" has neither a token nor a byte token: the unknown token.
  EXPECT_EQ(t->Encode("z", false, false), (std::vector<int32_t>{6, 0}));
  // A lone lead byte swallows the next byte as one "character" (llama.cpp
  // splits by the lead byte alone): C3 41 is one symbol, not a token, so
  // both bytes fall back separately.
  EXPECT_EQ(t->Encode("\xC3" "A", false, false), (std::vector<int32_t>{6, 4, 3}));
  // Byte tokens decode to their bytes; the first token loses its space.
  EXPECT_EQ(t->Decode({6, 4, 5, 3}), "\xC3\xA9" "A");
  EXPECT_EQ(t->Decode({1, 6, 4, 5}), " \xC3\xA9");  // BOS used up the removal
}

TEST(SpmScoreTest, PrefixesTextAfterSpecialTokens) {
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(HandVocab()));
  // parse_special: "</s>" is EOS and the text after it gets its own ▁.
  EXPECT_EQ(t->Encode("a</s>a", false, true), (std::vector<int32_t>{12, 2, 12}));
  TokenizerData d = HandVocab();
  d.spm.prefix = TokenizerData::SpmOptions::Prefix::kNever;
  d.spm.leading_space = TokenizerData::SpmOptions::LeadingSpace::kKeep;
  ASSERT_OK_AND_ASSIGN(auto no_prefix, Tokenizer::FromData(d));
  EXPECT_EQ(no_prefix->Encode("ab", false, false), (std::vector<int32_t>{10}));
  EXPECT_EQ(no_prefix->Decode({14}), " ab");
}

TEST(SpmScoreTest, EncodeSegmentsJoinsTextBetweenSpecialTokens) {
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(HandVocab()));
  // "a" + "b" is "ab": one prefix and one merge, ▁ab (14). Alone, "b"
  // would get its own ▁: ▁a (12), ▁ (6), b (8).
  const std::vector<TextSegment> ab = {{"a", false}, {"b", false}};
  EXPECT_EQ(t->EncodeSegments(ab, false), (std::vector<int32_t>{14}));
  EXPECT_EQ(t->EncodeSegments(ab, true), (std::vector<int32_t>{1, 14}));
  // A special token in a parsing segment still cuts, and the text after it
  // gets its prefix: ▁a </s> ▁ b.
  EXPECT_EQ(t->EncodeSegments({{"a</s>", true}, {"b", false}}, false),
            (std::vector<int32_t>{12, 2, 6, 8}));
  // In a plain segment "</s>" is four characters, none a token or byte
  // token here, so each is <unk>.
  EXPECT_EQ(t->EncodeSegments({{"a", true}, {"</s>b", false}}, false),
            (std::vector<int32_t>{12, 0, 0, 0, 0, 8}));
  // Empty segments change nothing.
  EXPECT_EQ(t->EncodeSegments({{"", true}, {"a", false}, {"", false}, {"b", true}}, false),
            (std::vector<int32_t>{14}));
  EXPECT_EQ(t->EncodeSegments({}, true), (std::vector<int32_t>{1}));
}

// Mistral v0.3's template (as in tests/golden/chat_templates.json) on a
// SentencePiece vocabulary: </s> closes assistant turns, BOS comes once
// from add_special, and the ids are the whole prompt's.
TEST(SpmChatTest, MistralPromptEncodesLikeTheWholeRenderedText) {
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::Open(GoldenPath("spm_gguf/spm_llama.gguf")));
  ASSERT_OK_AND_ASSIGN(TokenizerData data, ReadTokenizerData(*file));
  const Json templates = Json::parse(ReadWholeFile(GoldenPath("chat_templates.json")));
  data.chat_template = templates["templates"]["mistral_v3"].get<std::string>();
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromData(data));
  const std::vector<ChatMessage> m = {
      {"system", "Be brief."}, {"user", "Hello world"}, {"assistant", " Hi! "},
      {"user", "And then?"}};
  ASSERT_OK_AND_ASSIGN(std::string text, tok->RenderChat(m, true));
  EXPECT_EQ(text, "[INST] Hello world[/INST] Hi!</s>[INST] Be brief.\n\nAnd then?[/INST]");
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, tok->EncodeChat(m, true));
  EXPECT_EQ(ids, tok->Encode(text, /*add_special=*/true, /*parse_special=*/true));
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], tok->bos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->bos_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->eos_id()), 1);
  // A user who types "</s>" gets text, not an end of turn.
  const std::vector<ChatMessage> sneaky = {{"user", "a</s>b"}};
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> plain, tok->EncodeChat(sneaky, true));
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tok->eos_id()), 0);
}

TEST(SpmScoreTest, RejectsShortScoresAndSurvivesNaN) {
  TokenizerData d = HandVocab();
  d.scores.resize(5);
  EXPECT_THAT(Tokenizer::FromData(d),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("hand-spm"), HasSubstr("tokenizer.ggml.scores"))));
  d = HandVocab();
  d.scores[13] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromData(d));
  // abc now ranks last: bc (2), then ▁a (0) beats abc: ▁a bc.
  EXPECT_EQ(t->Encode("abc", false, false), (std::vector<int32_t>{12, 11}));
}

TEST(SpmStreamingTest, HfSentencePieceStreamsLikeDecode) {
  for (const std::string kind : {"llama2", "llama2_metaspace"}) {
    const std::string dir = GoldenPath("hf_tokenizers/" + kind);
    ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfFiles(dir + "/tokenizer.json",
                                                          dir + "/tokenizer_config.json"));
    const Json golden = Json::parse(ReadWholeFile(dir + "/golden.json"));
    int mismatches = 0;
    for (const Json& c : golden["cases"]) {
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      // The golden decode is Hugging Face's (skip_special_tokens).
      const std::string want = Sanitized(c["decoded"].get<std::string>());
      if (Stream(*tok, ids) != want && ++mismatches <= 3) {
        ADD_FAILURE() << kind << " " << c["name"] << ": streamed '" << Stream(*tok, ids)
                      << "' want '" << want << "'";
      }
    }
    EXPECT_EQ(mismatches, 0) << kind;
  }
}

}  // namespace
}  // namespace tessera
