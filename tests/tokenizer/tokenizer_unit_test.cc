// Unit tests of the tokenizer's parts on inputs whose right answers are known
// independently: Unicode facts, the Unicode Standard's U+FFFD examples,
// GPT-2's byte alphabet, pattern splits worked out by hand from the regexes,
// and BPE on a miniature vocabulary whose merges can be followed on paper.
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "testing/status_matchers.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::tessera::testing::IsOk;
using ::tessera::testing::MiniVocab;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string U(const char* s) { return s; }

MATCHER_P(IsOkAndHolds, expected, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(expected, *arg, result_listener);
}

TEST(UnicodeTest, ClassifiesCodepointsByGeneralCategory) {
  EXPECT_EQ(CodepointFlagsOf('a'), kCpLetter);
  EXPECT_EQ(CodepointFlagsOf('7'), kCpNumber);
  EXPECT_EQ(CodepointFlagsOf('!'), kCpPunctuation);
  EXPECT_EQ(CodepointFlagsOf('+'), kCpSymbol);
  EXPECT_EQ(CodepointFlagsOf(' '), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(CodepointFlagsOf('\n'), kCpControl | kCpWhitespace);
  EXPECT_EQ(CodepointFlagsOf(0x00A0), kCpSeparator | kCpWhitespace);  // NBSP
  EXPECT_EQ(CodepointFlagsOf(0x0085), kCpControl | kCpWhitespace);    // NEL
  EXPECT_EQ(CodepointFlagsOf(0x3000), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(CodepointFlagsOf(0x200B), kCpControl);  // ZWSP is Cf, not White_Space
  EXPECT_EQ(CodepointFlagsOf(0x0301), kCpMark);
  EXPECT_EQ(CodepointFlagsOf(0x20AC), kCpSymbol);   // euro sign
  EXPECT_EQ(CodepointFlagsOf(0x00BD), kCpNumber);   // 1/2 is No
  EXPECT_EQ(CodepointFlagsOf(0x2160), kCpNumber);   // roman numeral one is Nl
  EXPECT_EQ(CodepointFlagsOf(0x4E2D), kCpLetter);   // CJK
  EXPECT_EQ(CodepointFlagsOf(0x1F600), kCpSymbol);  // emoji
  EXPECT_EQ(CodepointFlagsOf(0xD800), kCpControl);  // surrogate is Cs
  EXPECT_EQ(CodepointFlagsOf(0x0378), kCpUndefined);
  EXPECT_EQ(CodepointFlagsOf(0x110000), kCpUndefined);
  // Version-sensitive: assigned in 15.1 (CJK Ext. I), unassigned until 16.0.
  EXPECT_EQ(CodepointFlagsOf(0x2EBF0), kCpLetter);
  EXPECT_EQ(CodepointFlagsOf(0x1C89), kCpUndefined);
  EXPECT_STREQ(UnicodeTablesVersion(), "15.1.0");
}

TEST(UnicodeTest, LenientDecodeFollowsLlamaCpp) {
  EXPECT_THAT(DecodeUtf8Lenient("a\xC3\xA9"), ElementsAre('a', 0xE9));
  EXPECT_THAT(DecodeUtf8Lenient("\xF0\x9F\x98\x80"), ElementsAre(0x1F600));
  // Overlong forms and surrogates are accepted, not validated.
  EXPECT_THAT(DecodeUtf8Lenient(std::string("\xC0\x80", 2)), ElementsAre(0));
  EXPECT_THAT(DecodeUtf8Lenient("\xED\xA0\x80"), ElementsAre(0xD800));
  // Each byte that cannot start a complete sequence is one U+FFFD.
  EXPECT_THAT(DecodeUtf8Lenient("\xE2\x82"), ElementsAre(0xFFFD, 0xFFFD));
  EXPECT_THAT(DecodeUtf8Lenient("\xFF" "a"), ElementsAre(0xFFFD, 'a'));
  // Past U+10FFFF (llama.cpp aborts here): every byte is replaced.
  EXPECT_THAT(DecodeUtf8Lenient("\xF4\x90\x80\x80"), ElementsAre(0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD));
}

TEST(Utf8Test, ReplacesMaximalIllFormedSubparts) {
  // The example of the Unicode Standard, section 3.9 (U+FFFD substitution).
  std::string out;
  AppendValidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", &out);
  EXPECT_EQ(out, U("a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD" "d"));
  const std::string kFffd = "\xEF\xBF\xBD";
  auto clean = [](const std::string& s) {
    std::string o;
    AppendValidUtf8(s, &o);
    return o;
  };
  // Expected values are Python's bytes.decode("utf-8", "replace").
  EXPECT_EQ(clean("\xE2\x82"), kFffd);
  EXPECT_EQ(clean("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(clean("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(clean("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(clean("\xE0\x9F"), kFffd + kFffd);
  EXPECT_EQ(clean("ok \xE2\x82\xAC"), "ok \xE2\x82\xAC");
}

TEST(Utf8Test, FindsIncompleteTrailingSequence) {
  EXPECT_EQ(IncompleteUtf8Suffix(""), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xF0\x9F\x98\x80"), 0u);  // complete
  EXPECT_EQ(IncompleteUtf8Suffix("\xE2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xE0\x9F"), 0u);  // can never become valid
  EXPECT_EQ(IncompleteUtf8Suffix("\xFF"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\x80"), 0u);
}

TEST(ByteLevelTest, UsesGpt2Alphabet) {
  EXPECT_EQ(ByteToCodepoint('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(ByteToCodepoint(' '), 0x120u);   // "Ġ"
  EXPECT_EQ(ByteToCodepoint('\n'), 0x10Au);  // "Ċ"
  EXPECT_EQ(ByteToCodepoint(0x00), 0x100u);
  EXPECT_EQ(ByteToCodepoint(0xAD), 0x143u);  // the last remapped byte
  EXPECT_EQ(ByteToCodepoint(0xE9), 0xE9u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CodepointToByte(ByteToCodepoint(b)), b);
  EXPECT_EQ(CodepointToByte(0x144), -1);
  std::string raw;
  EXPECT_TRUE(ByteDecode("\xC4\xA0hello\xC4\x8A", &raw));
  EXPECT_EQ(raw, " hello\n");
}

std::vector<std::string> Split(PreTokenizerKind kind, const std::string& text) {
  return PreTokenize(kind, text);
}

TEST(PreTokenizerTest, Gpt2PatternSplitsLikeTheRegex) {
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "Hello world's  end  \n"),
              ElementsAre("Hello", " world", "'s", " ", " end", "  \n"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "a   1"), ElementsAre("a", "  ", " 1"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "x 12"), ElementsAre("x", " 12"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "I'M don't"), ElementsAre("I", "'", "M", " don", "'t"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "a\xC2\xA0" "b"), ElementsAre("a", "\xC2\xA0", "b"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "(x)!! ?"), ElementsAre("(", "x", ")!!", " ?"));
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, ""), ElementsAre());
}

TEST(PreTokenizerTest, SmolLmIsolatesDigitsFirst) {
  EXPECT_THAT(Split(PreTokenizerKind::kSmolLm, "abc123"), ElementsAre("abc", "1", "2", "3"));
  // The run of spaces ends its piece, so \s+(?!\S) keeps it whole.
  EXPECT_THAT(Split(PreTokenizerKind::kSmolLm, "a   1"), ElementsAre("a", "   ", "1"));
  EXPECT_THAT(Split(PreTokenizerKind::kSmolLm, "x 12"), ElementsAre("x", " ", "1", "2"));
  EXPECT_THAT(Split(PreTokenizerKind::kSmolLm, "\xC2\xBD" "x"), ElementsAre("\xC2\xBD", "x"));
}

TEST(PreTokenizerTest, Llama3PatternGroupsDigitsByThree) {
  EXPECT_THAT(Split(PreTokenizerKind::kLlama3, "Hello 12345 world\n\nfoo"),
              ElementsAre("Hello", " ", "123", "45", " world", "\n\n", "foo"));
  EXPECT_THAT(Split(PreTokenizerKind::kLlama3, "IT'S"), ElementsAre("IT", "'S"));
  EXPECT_THAT(Split(PreTokenizerKind::kLlama3, "x!!\n\ny"), ElementsAre("x", "!!\n\n", "y"));
}

TEST(PreTokenizerTest, DefaultChainsFourPatterns) {
  EXPECT_THAT(Split(PreTokenizerKind::kDefault, "x+=1234"), ElementsAre("x", "+=", "123", "4"));
}

TEST(PreTokenizerTest, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_THAT(Split(PreTokenizerKind::kGpt2, "a\xFF"), ElementsAre("a", "\xEF\xBF\xBD"));
}

TEST(PreTokenizerTest, UnknownNameIsUnimplemented) {
  EXPECT_THAT(PreTokenizerFromName("qwen2"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("qwen2")));
  EXPECT_THAT(PreTokenizerFromName("smollm"), IsOk());
}

// Ids in MiniVocab: byte b is 4 + b; merged tokens follow from 260.
constexpr int32_t kHe = 260, kHello = 263, kSpaceWorld = 268, kAa = 269, kBc = 270;
int32_t ByteId(char c) { return 4 + static_cast<uint8_t>(c); }

std::unique_ptr<Tokenizer> Mini(TokenizerData d = MiniVocab()) {
  auto t = Tokenizer::FromData(d);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(BpeTest, MergesByRankThenLeftmost) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->Encode("hello world", false, false), ElementsAre(kHello, kSpaceWorld));
  // Equal ranks: the leftmost pair merges first.
  EXPECT_THAT(t->Encode("aaa", false, false), ElementsAre(kAa, ByteId('a')));
  // "b c" outranks "a b".
  EXPECT_THAT(t->Encode("abc", false, false), ElementsAre(ByteId('a'), kBc));
  EXPECT_THAT(t->Encode("he", false, false), ElementsAre(kHe));
  EXPECT_THAT(t->Encode("", false, false), ElementsAre());
}

TEST(TokenizerTest, SplitsSpecialTokensOnlyWhenAsked) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->Encode("<|im_start|>hello<|im_end|>", false, true), ElementsAre(1, kHello, 2));
  EXPECT_THAT(t->Encode("hello<|endoftext|>hello", false, true), ElementsAre(kHello, 0, kHello));
  const std::vector<int32_t> plain = t->Encode("<|im_start|>hello<|im_end|>", false, false);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(1)));
  EXPECT_THAT(plain, ::testing::Contains(kHello));
  EXPECT_EQ(t->Decode(plain), "<|im_start|>hello<|im_end|>");
  // User-defined tokens are split out regardless.
  EXPECT_THAT(t->Encode("a<tool>b", false, false), ElementsAre(ByteId('a'), 3, ByteId('b')));
}

TEST(TokenizerTest, PrefersLongestSpecialToken) {
  TokenizerData d = MiniVocab();
  d.tokens.push_back("<x>");
  d.token_types.push_back(3);
  d.tokens.push_back("<x><y>");
  d.token_types.push_back(3);
  auto t = Mini(d);
  ASSERT_NE(t, nullptr);
  const int32_t x = t->vocab_size() - 2, xy = t->vocab_size() - 1;
  EXPECT_THAT(t->Encode("<x><y><x>", false, true), ElementsAre(xy, x));
}

TEST(TokenizerTest, EncodesInvalidUtf8AsReplacementCharacters) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> fffd = {ByteId('\xEF'), ByteId('\xBF'), ByteId('\xBD')};
  // A lone 0xFF is one U+FFFD (EF BF BD), as in llama.cpp.
  EXPECT_EQ(t->Encode("\xFF", false, false), fffd);
  // Past U+10FFFF llama.cpp aborts; here each of the 4 bytes is one U+FFFD.
  std::vector<int32_t> four;
  for (int i = 0; i < 4; ++i) four.insert(four.end(), fffd.begin(), fffd.end());
  EXPECT_EQ(t->Encode("\xF4\x90\x80\x80", false, false), four);
  // Overlong NUL is re-encoded canonically.
  EXPECT_THAT(t->Encode(std::string("\xC0\x80", 2), false, false), ElementsAre(ByteId('\0')));
}

TEST(TokenizerTest, AddsBosAndEosPerMetadata) {
  TokenizerData d = MiniVocab();
  EXPECT_THAT(Mini(d)->Encode("hello", true, false), ElementsAre(kHello));  // gpt-2 default
  d.add_bos = true;
  d.add_eos = true;
  auto t = Mini(d);
  EXPECT_TRUE(t->add_bos());
  EXPECT_THAT(t->Encode("hello", true, false), ElementsAre(0, kHello, 0));
  EXPECT_THAT(t->Encode("hello", false, false), ElementsAre(kHello));
}

TEST(TokenizerTest, DefaultsGpt2SpecialIdsLikeLlamaCpp) {
  TokenizerData d = MiniVocab();
  d.ids.bos.reset();
  d.ids.eos.reset();
  auto t = Mini(d);
  EXPECT_EQ(t->bos_id(), 11);
  EXPECT_EQ(t->eos_id(), 11);
}

TEST(TokenizerTest, DecodesPiecesAndSkipsInvalidIds) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Decode(std::vector<int32_t>{kHello, kSpaceWorld}), "hello world");
  EXPECT_EQ(t->TokenToPiece(1), "");
  EXPECT_EQ(t->TokenToPiece(1, true), "<|im_start|>");
  EXPECT_EQ(t->TokenToPiece(3), "<tool>");  // user-defined: always rendered
  EXPECT_EQ(t->TokenToPiece(ByteId('\n')), "\n");
  EXPECT_EQ(t->TokenToPiece(-1), "");
  EXPECT_EQ(t->TokenToPiece(1 << 30), "");
  EXPECT_EQ(t->Decode(std::vector<int32_t>{-5, kHello, 100000, 2}), "hello");
  EXPECT_EQ(t->Decode(std::vector<int32_t>{kHello, 2}, true), "hello<|im_end|>");
}

TEST(TokenizerTest, ReportsEndOfGenerationAndLookups) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->IsEndOfGeneration(0));   // eos
  EXPECT_TRUE(t->IsEndOfGeneration(2));   // <|im_end|> by name
  EXPECT_FALSE(t->IsEndOfGeneration(1));
  EXPECT_FALSE(t->IsEndOfGeneration(kHello));
  EXPECT_FALSE(t->IsEndOfGeneration(-1));
  EXPECT_THAT(t->TokenId("hello"), IsOkAndHolds(kHello));
  EXPECT_THAT(t->TokenId("nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_TRUE(t->IsValidId(0));
  EXPECT_FALSE(t->IsValidId(t->vocab_size()));
  EXPECT_EQ(t->token_type(1), TokenType::kControl);
  EXPECT_EQ(t->token_type(3), TokenType::kUserDefined);
}

TEST(TokenizerTest, EncodeSegmentsJoinsTextBetweenSpecialTokens) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  // "hel" + "lo world" is pre-tokenized and merged as "hello world"; alone,
  // "hel" would be he l.
  EXPECT_THAT(t->EncodeSegments({{"hel", false}, {"lo world", true}}, false),
              ElementsAre(kHello, kSpaceWorld));
  EXPECT_THAT(t->Encode("hel", false, false), ElementsAre(kHe, ByteId('l')));
  // Special-token text is a token only in a segment that parses it.
  EXPECT_THAT(t->EncodeSegments({{"<|im_start|>", true}, {"hello<|im_end|>", false}}, false),
              ElementsAre(1, kHello, ByteId('<'), ByteId('|'), ByteId('i'), ByteId('m'),
                          ByteId('_'), ByteId('e'), ByteId('n'), ByteId('d'), ByteId('|'),
                          ByteId('>')));
  // ... and never across a boundary, even in parsing segments.
  EXPECT_THAT(t->EncodeSegments({{"<|im_", true}, {"end|>", true}}, false),
              ::testing::Not(::testing::Contains(2)));
  // User-defined tokens are split out everywhere, as by Encode.
  EXPECT_THAT(t->EncodeSegments({{"a", true}, {"<tool>b", false}}, false),
              ElementsAre(ByteId('a'), 3, ByteId('b')));
  TokenizerData d = MiniVocab();
  d.add_bos = true;
  d.add_eos = true;
  auto special = Mini(d);
  ASSERT_NE(special, nullptr);
  EXPECT_THAT(special->EncodeSegments({{"he", false}}, true), ElementsAre(0, kHe, 0));
}

TEST(TokenizerTest, HonoursExtraEndOfGenerationIds) {
  TokenizerData d = MiniVocab();
  d.extra_end_of_generation_ids = {1, kHello};
  auto t = Mini(d);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->IsEndOfGeneration(1));
  EXPECT_TRUE(t->IsEndOfGeneration(kHello));
  EXPECT_TRUE(t->IsEndOfGeneration(0));  // EOS still ends generation
  EXPECT_FALSE(t->IsEndOfGeneration(kHe));
  d.extra_end_of_generation_ids = {1, 100000};
  EXPECT_THAT(Tokenizer::FromData(d),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("mini-vocab"), HasSubstr("100000"))));
  d.extra_end_of_generation_ids = {-1};
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("-1")));
}

TEST(TokenizerTest, RejectsBadData) {
  TokenizerData d = MiniVocab();
  d.model = "bert";
  EXPECT_THAT(Tokenizer::FromData(d),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("'bert'")));
  d = MiniVocab();
  d.pre = "mystery-pre";
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kUnimplemented,
                                               HasSubstr("mystery-pre")));
  d = MiniVocab();
  d.merges.push_back("h zz");
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kDataLoss,
                                               ::testing::AllOf(HasSubstr("mini-vocab"),
                                                                HasSubstr("'zz'"))));
  d = MiniVocab();
  d.merges.push_back("nospace");
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nospace")));
  d = MiniVocab();
  d.tokens.clear();
  d.token_types.clear();
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("tokenizer.ggml.tokens")));
  d = MiniVocab();
  d.token_types.resize(10);
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kDataLoss,
                                               HasSubstr("tokenizer.ggml.token_type")));
  d = MiniVocab();
  d.ids.bos = 1 << 20;
  EXPECT_THAT(Tokenizer::FromData(d), StatusIs(absl::StatusCode::kDataLoss,
                                               HasSubstr("bos_token_id")));
}

// A GGUF file holding MiniVocab's metadata, minus `skip_key`.
std::string MiniGguf(const std::string& skip_key = "", const std::string& model = "gpt2") {
  TokenizerData d = MiniVocab();
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  if (skip_key != "tokenizer.ggml.model") w.SetString("tokenizer.ggml.model", model);
  if (skip_key != "tokenizer.ggml.pre") w.SetString("tokenizer.ggml.pre", "smollm");
  if (skip_key != "tokenizer.ggml.tokens") w.SetStringArray("tokenizer.ggml.tokens", d.tokens);
  if (skip_key != "tokenizer.ggml.token_type") {
    w.SetInt32Array("tokenizer.ggml.token_type", d.token_types);
  }
  if (skip_key != "tokenizer.ggml.merges") w.SetStringArray("tokenizer.ggml.merges", d.merges);
  w.SetUint32("tokenizer.ggml.bos_token_id", 1);
  w.SetUint32("tokenizer.ggml.eos_token_id", 2);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetString("tokenizer.chat_template", "{{ '<|im_start|>' }}");
  return w.Serialize();
}

TEST(TokenizerGgufTest, ReadsMetadata) {
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::FromBuffer("mini.gguf", MiniGguf()));
  ASSERT_OK_AND_ASSIGN(auto t, Tokenizer::FromGguf(*file));
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->chat_template(), "{{ '<|im_start|>' }}");
  EXPECT_THAT(t->Encode("hello world", true, false), ElementsAre(1, kHello, kSpaceWorld));
}

TEST(TokenizerGgufTest, NamesFileAndMissingKey) {
  for (const std::string key :
       {"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.model"}) {
    ASSERT_OK_AND_ASSIGN(auto file, GgufFile::FromBuffer("mini.gguf", MiniGguf(key)));
    EXPECT_THAT(Tokenizer::FromGguf(*file),
                StatusIs(absl::StatusCode::kNotFound,
                         ::testing::AllOf(HasSubstr("mini.gguf"), HasSubstr(key))));
  }
  // token_type is optional, as in llama.cpp.
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::FromBuffer("mini.gguf",
                                                       MiniGguf("tokenizer.ggml.token_type")));
  EXPECT_THAT(Tokenizer::FromGguf(*file), IsOk());
}

TEST(TokenizerGgufTest, RejectsOtherTokenizerModels) {
  // "t5" is SentencePiece's unigram model (llama.cpp's UGM).
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::FromBuffer("ugm.gguf", MiniGguf("", "t5")));
  EXPECT_THAT(Tokenizer::FromGguf(*file),
              StatusIs(absl::StatusCode::kUnimplemented,
                       ::testing::AllOf(HasSubstr("ugm.gguf"), HasSubstr("'t5'"))));
}

TEST(IncrementalDetokenizerTest, HoldsBackSplitCharacters) {
  auto t = Mini();
  ASSERT_NE(t, nullptr);
  IncrementalDetokenizer detok(*t);
  // U+1F600 is F0 9F 98 80: four single-byte tokens.
  EXPECT_EQ(detok.Push(ByteId('\xF0')), "");
  EXPECT_EQ(detok.Push(ByteId('\x9F')), "");
  EXPECT_EQ(detok.Push(ByteId('\x98')), "");
  EXPECT_EQ(detok.Push(ByteId('\x80')), "\xF0\x9F\x98\x80");
  EXPECT_EQ(detok.Push(kHello), "hello");
  // A sequence that can no longer complete is replaced as soon as known.
  EXPECT_EQ(detok.Push(ByteId('\xE2')), "");
  EXPECT_EQ(detok.Push(ByteId('A')), "\xEF\xBF\xBD" "A");
  EXPECT_EQ(detok.Push(ByteId('\xFF')), "\xEF\xBF\xBD");
  EXPECT_EQ(detok.Push(1), "");  // control token
  EXPECT_EQ(detok.Push(-7), "");  // invalid id
  EXPECT_EQ(detok.Push(ByteId('\xF0')), "");
  EXPECT_EQ(detok.Push(ByteId('\x9F')), "");
  EXPECT_EQ(detok.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(detok.Flush(), "");
}

const char kSmolTemplate[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplateTest, RendersChatMlWithDefaultSystem) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi"}, {"assistant", "Hello!"}};
  EXPECT_THAT(ApplyChatTemplate(kSmolTemplate, msgs, false),
              IsOkAndHolds(std::string(
                  "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                  "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\nHello!<|im_end|>\n")));
  const std::vector<ChatMessage> with_system = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_THAT(ApplyChatTemplate(kSmolTemplate, with_system, true),
              IsOkAndHolds(std::string(
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\n")));
  // No messages: the default system block sits inside the loop, so only the
  // generation prompt is rendered.
  EXPECT_THAT(ApplyChatTemplate(kSmolTemplate, {}, true),
              IsOkAndHolds(std::string("<|im_start|>assistant\n")));
}

TEST(ChatTemplateTest, HandlesEscapedLiteralsAndPlainChatMl) {
  const std::string escaped =
      "{% if messages[0]['role'] != 'system' %}{{ \"<|im_start|>system\\nDefault \\\"sys\\\""
      "<|im_end|>\\n\" }}{% endif %}{% for m in messages %}{{'<|im_start|>' + m['role']}}"
      "{% endfor %}";
  EXPECT_THAT(ApplyChatTemplate(escaped, std::vector<ChatMessage>{{"user", "x"}}, false),
              IsOkAndHolds(std::string(
                  "<|im_start|>system\nDefault \"sys\"<|im_end|>\n<|im_start|>user\nx<|im_end|>\n")));
  const std::string plain = "{% for m in messages %}{{'<|im_start|>' + m['role']}}{% endfor %}";
  EXPECT_THAT(ApplyChatTemplate(plain, std::vector<ChatMessage>{{"user", "x"}}, false),
              IsOkAndHolds(std::string("<|im_start|>user\nx<|im_end|>\n")));
}

}  // namespace
}  // namespace tessera
