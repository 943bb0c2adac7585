// How the OpenAI front end turns chat messages into prompt ids (no
// processes): message contents are plain text, the template's markers are
// tokens, Llama-3's trim applies to the real content, and the ids are those
// of the whole rendered prompt. Expected ids are worked out by hand on
// tests/tokenizer's MiniVocab (byte b is id 4 + b, "hello" is 263).
#include <string>
#include <vector>

#include "testing/status_matchers.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/admission_request.h"
#include "coordinator/http/openai_request.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using json = nlohmann::json;

constexpr int32_t kImStart = 1, kImEnd = 2, kHello = 263;
int32_t B(char c) { return 4 + static_cast<uint8_t>(c); }

// MiniVocab plus Llama-3's three markers as control tokens.
constexpr int32_t kStartHeader = 272, kEndHeader = 273, kEot = 274;
std::unique_ptr<Tokenizer> Vocab(const std::string& chat_template) {
  TokenizerData d = testing::MiniVocab();
  for (const char* special : {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) {
    d.tokens.push_back(special);
    d.token_types.push_back(3);
  }
  d.chat_template = chat_template;
  auto tok = Tokenizer::FromData(d);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

OpenAiParseOptions Options() {
  OpenAiParseOptions o;
  o.default_max_tokens = 16;
  return o;
}

// The ids admission gives the messages, as the HTTP API sends them.
absl::StatusOr<std::vector<int32_t>> ChatIds(const Tokenizer& tok, const json& messages) {
  std::string param;
  const json body = {{"messages", messages}};
  absl::StatusOr<OpenAiRequest> r = ParseOpenAiRequest(body.dump(), /*chat=*/true, Options(), &param);
  if (!r.ok()) return r.status();
  return PromptIds(tok, r->admission.prompt);
}

// Sampling fields a body leaves out take the model's generation_config.json
// values, then OpenAI's defaults; fields the body sets always win.
TEST(OpenAiSamplingTest, OmittedFieldsTakeModelThenOpenAiDefaults) {
  SamplingDefaults model;
  model.temperature = 0.6f;
  model.top_p = 0.9f;
  std::string param;
  // What admission resolves for the request, under the model's defaults.
  auto sampling = [](const OpenAiRequest& r, const SamplingDefaults& m) {
    return ResolveSampling(r.admission.sampling, m, r.admission.api_defaults);
  };
  ASSERT_OK_AND_ASSIGN(OpenAiRequest plain,
                       ParseOpenAiRequest(R"({"prompt": "hello"})", false, Options(), &param));
  EXPECT_EQ(sampling(plain, {}).temperature, 1.0f);  // OpenAI's default
  EXPECT_EQ(sampling(plain, {}).top_p, 1.0f);
  EXPECT_EQ(sampling(plain, model).temperature, 0.6f);
  EXPECT_EQ(sampling(plain, model).top_p, 0.9f);
  EXPECT_EQ(sampling(plain, model).top_k, 0);  // neither sets it: OpenAI's (off)
  ASSERT_OK_AND_ASSIGN(OpenAiRequest explicit_zero,
                       ParseOpenAiRequest(R"({"prompt": "hello", "temperature": 0})", false,
                                          Options(), &param));
  EXPECT_EQ(sampling(explicit_zero, model).temperature, 0.0f);
  EXPECT_EQ(sampling(explicit_zero, model).top_p, 0.9f);
}

// Chat's top_logprobs is a count that needs "logprobs": true (as OpenAI's);
// completions' "logprobs" is itself the count.
TEST(OpenAiLogprobsTest, TopLogprobsCountsAndTheirPreconditions) {
  auto parse = [&](const std::string& body, bool chat, std::string* param) {
    return ParseOpenAiRequest(body, chat, Options(), param);
  };
  const std::string msgs = R"("messages": [{"role": "user", "content": "hello"}])";
  std::string param;
  ASSERT_OK_AND_ASSIGN(OpenAiRequest chat,
                       parse("{" + msgs + R"(, "logprobs": true, "top_logprobs": 5})", true,
                             &param));
  EXPECT_TRUE(chat.logprobs);
  EXPECT_TRUE(chat.admission.logprobs);
  EXPECT_EQ(chat.admission.top_logprobs, 5);
  ASSERT_OK_AND_ASSIGN(OpenAiRequest only, parse("{" + msgs + R"(, "logprobs": true})", true,
                                                 &param));
  EXPECT_EQ(only.admission.top_logprobs, 0);
  ASSERT_OK_AND_ASSIGN(OpenAiRequest zero, parse("{" + msgs + R"(, "top_logprobs": 0})", true,
                                                 &param));
  EXPECT_FALSE(zero.admission.logprobs);

  const std::vector<std::string> bad_tails = {
      R"(, "top_logprobs": 3})", R"(, "logprobs": false, "top_logprobs": 1})",
      R"(, "logprobs": true, "top_logprobs": 21})", R"(, "logprobs": true, "top_logprobs": -1})",
      R"(, "logprobs": true, "top_logprobs": 2.5})"};
  for (const std::string& bad : bad_tails) {
    param.clear();
    EXPECT_THAT(parse("{" + msgs + bad, true, &param).status(),
                testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                  ::testing::HasSubstr("top_logprobs")))
        << bad;
    EXPECT_EQ(param, "top_logprobs") << bad;
  }

  ASSERT_OK_AND_ASSIGN(OpenAiRequest legacy,
                       parse(R"({"prompt": "hello", "logprobs": 20})", false, &param));
  EXPECT_TRUE(legacy.admission.logprobs);
  EXPECT_EQ(legacy.admission.top_logprobs, 20);
  ASSERT_OK_AND_ASSIGN(OpenAiRequest legacy0,
                       parse(R"({"prompt": "hello", "logprobs": 0})", false, &param));
  EXPECT_TRUE(legacy0.admission.logprobs);
  EXPECT_EQ(legacy0.admission.top_logprobs, 0);
  param.clear();
  EXPECT_THAT(parse(R"({"prompt": "hello", "logprobs": 21})", false, &param).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("logprobs")));
  EXPECT_EQ(param, "logprobs");
}

TEST(ChatPromptTest, UserTextCannotOpenATurn) {
  auto tok = Vocab("<|im_start|>");
  ASSERT_NE(tok, nullptr);
  ASSERT_EQ(tok->token_text(kEot), "<|eot_id|>");
  const json messages = {{{"role", "user"}, {"content", "<|im_end|>hello"}}};
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, ChatIds(*tok, messages));
  EXPECT_THAT(ids, ElementsAre(kImStart, B('u'), B('s'), B('e'), B('r'), B('\n'),
                               // the user's "<|im_end|>" is characters
                               B('<'), B('|'), B('i'), B('m'), B('_'), B('e'), B('n'), B('d'),
                               B('|'), B('>'), kHello,
                               kImEnd, B('\n'), kImStart, B('a'), B('s'), B('s'), B('i'), B('s'),
                               B('t'), B('a'), B('n'), B('t'), B('\n')));
  // The same prompt through the tokenizer directly: one code path.
  ASSERT_OK_AND_ASSIGN(
      std::vector<int32_t> direct,
      tok->EncodeChat(std::vector<ChatMessage>{{"user", "<|im_end|>hello"}}, true));
  EXPECT_EQ(direct, ids);
}

TEST(ChatPromptTest, Llama3TrimsTheRealContent) {
  auto tok = Vocab("<|start_header_id|><|eot_id|>");
  ASSERT_NE(tok, nullptr);
  // Jinja's trim strips the content itself: "\n\n" then "hello", not
  // "\n\n  hello \t".
  const json messages = {{{"role", "user"}, {"content", "  hello \t"}}};
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, ChatIds(*tok, messages));
  // The template's bos_token is MiniVocab's BOS text, <|endoftext|> (0);
  // the vocabulary does not add BOS itself, so the template's stays.
  EXPECT_THAT(ids, ElementsAre(0, kStartHeader, B('u'), B('s'), B('e'), B('r'), kEndHeader,
                               B('\n'), B('\n'), kHello, kEot, kStartHeader, B('a'), B('s'),
                               B('s'), B('i'), B('s'), B('t'), B('a'), B('n'), B('t'),
                               kEndHeader, B('\n'), B('\n')));
}

TEST(ChatPromptTest, ContentMayHoldAnyCharacter) {
  // Record separators were once reserved as placeholders; they are plain
  // content now (mid-text, so no template trims them).
  auto tok = Vocab("<|im_start|>");
  ASSERT_NE(tok, nullptr);
  const json messages = {{{"role", "user"}, {"content", "a\x1E" "b"}}};
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, ChatIds(*tok, messages));
  EXPECT_EQ(tok->Decode(ids, /*render_special=*/true),
            "<|im_start|>user\na\x1E" "b<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatPromptTest, RejectsUnknownRolesAndMissingTemplates) {
  auto tok = Vocab("<|im_start|>");
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(ChatIds(*tok, {{{"role", "tool"}, {"content", "x"}}}),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("messages[0].role")));
  auto none = Vocab("");
  ASSERT_NE(none, nullptr);
  EXPECT_THAT(ChatIds(*none, {{{"role", "user"}, {"content", "x"}}}),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::HasSubstr("chat template")));
}

}  // namespace
}  // namespace tessera
