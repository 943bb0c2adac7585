// ApplyChatTemplate against jinja2: tests/golden/chat_templates.json holds
// templates written in each supported family's format and what jinja2
// renders for a set of conversations (scripts/golden/gen_chat_template_golden.py).
// Every rendering must be byte-identical; conversations a template rejects
// must be rejected with INVALID_ARGUMENT. Also: family detection on the
// markers of real templates, the errors for unknown ones, where contents
// land in the rendered text (RenderChatTemplate's spans), and Tokenizer's
// RenderChat BOS handling and EncodeChat.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "testing/status_matchers.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::tessera::testing::GoldenPath;
using ::tessera::testing::ReadWholeFile;
using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Json = nlohmann::json;

MATCHER_P(Renders, expected, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(::testing::Eq(std::string(expected)), *arg,
                                       result_listener);
}

std::vector<ChatMessage> Messages(const Json& list) {
  std::vector<ChatMessage> out;
  for (const Json& m : list) out.push_back({m["role"], m["content"]});
  return out;
}

TEST(ChatTemplateGoldenTest, MatchesJinjaForEveryFamily) {
  const Json golden = Json::parse(ReadWholeFile(GoldenPath("chat_templates.json")));
  const Json& templates = golden["templates"];
  ASSERT_GE(templates.size(), 13u);
  int rendered = 0, rejected = 0;
  for (const Json& c : golden["cases"]) {
    const std::string name = c["template"].get<std::string>() + "/" +
                             c["conversation"].get<std::string>() +
                             (c["add_generation_prompt"].get<bool>() ? "+gen" : "");
    ChatTemplateOptions options;
    options.add_generation_prompt = c["add_generation_prompt"];
    options.bos_token = c["bos_token"];
    options.eos_token = c["eos_token"];
    const auto got = ApplyChatTemplate(templates[c["template"].get<std::string>()],
                                       Messages(c["messages"]), options);
    if (c.contains("error")) {
      EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_)) << name;
      ++rejected;
      continue;
    }
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(*got, c["rendered"].get<std::string>()) << name;
    ++rendered;
  }
  EXPECT_EQ(rendered, 318);
  EXPECT_EQ(rejected, 46);
}

// Whether `text` is whitespace in every byte or Unicode space the golden
// conversations use (U+00A0, U+2003, U+3000).
bool IsBlank(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    for (std::string_view ws : {" ", "\t", "\n", "\xC2\xA0", "\xE2\x80\x83", "\xE3\x80\x80"}) {
      if (text.substr(i, ws.size()) == ws) len = ws.size();
    }
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// For every golden rendering, each content span holds one message's
// content less at most some whitespace at its ends, spans are disjoint and
// in order, every message the template places (per jinja2, with a sentinel
// content) that has non-blank content has a span, and no other does.
TEST(ChatTemplateGoldenTest, SpansCoverEachPlacedContent) {
  const Json golden = Json::parse(ReadWholeFile(GoldenPath("chat_templates.json")));
  int checked = 0;
  for (const Json& c : golden["cases"]) {
    if (!c.contains("rendered")) continue;
    const std::string name = c["template"].get<std::string>() + "/" +
                             c["conversation"].get<std::string>();
    ChatTemplateOptions options;
    options.add_generation_prompt = c["add_generation_prompt"];
    options.bos_token = c["bos_token"];
    options.eos_token = c["eos_token"];
    const std::vector<ChatMessage> messages = Messages(c["messages"]);
    ASSERT_OK_AND_ASSIGN(RenderedChat chat,
                         RenderChatTemplate(golden["templates"][c["template"].get<std::string>()],
                                            messages, options));
    std::vector<bool> spanned(messages.size(), false);
    size_t previous_end = 0;
    for (const RenderedChat::Span& span : chat.content_spans) {
      ASSERT_LT(span.begin, span.end) << name;
      ASSERT_LE(previous_end, span.begin) << name;
      ASSERT_LE(span.end, chat.text.size()) << name;
      previous_end = span.end;
      const std::string piece = chat.text.substr(span.begin, span.end - span.begin);
      bool matched = false;
      for (size_t m = 0; m < messages.size() && !matched; ++m) {
        const std::string& content = messages[m].content;
        const size_t at = content.find(piece);
        if (spanned[m] || at == std::string::npos) continue;
        if (!IsBlank(std::string_view(content).substr(0, at)) ||
            !IsBlank(std::string_view(content).substr(at + piece.size()))) {
          continue;
        }
        spanned[m] = matched = true;
      }
      EXPECT_TRUE(matched) << name << ": span \"" << piece << "\" is no message's content";
    }
    for (size_t m = 0; m < messages.size(); ++m) {
      // A blank content has a span only where the template keeps it whole.
      if (!c["placed"][m].get<bool>()) {
        EXPECT_FALSE(spanned[m]) << name << ": message " << m << " is not in the text";
      } else if (!IsBlank(messages[m].content)) {
        EXPECT_TRUE(spanned[m]) << name << ": message " << m << " has no span";
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 318);
}

// The markers real templates carry (short excerpts in each model's
// spelling, not whole templates) select the right family.
TEST(ChatTemplateTest, DetectsFamiliesByMarkers) {
  const std::vector<ChatMessage> user = {{"user", "Hi"}};
  // Llama-3: headers and <|eot_id|>, BOS from the options.
  ChatTemplateOptions llama;
  llama.bos_token = "<|begin_of_text|>";
  EXPECT_THAT(ApplyChatTemplate("{% set content = '<|start_header_id|>' + message['role'] + "
                                "'<|end_header_id|>\\n\\n' + message['content'] | trim + "
                                "'<|eot_id|>' %}",
                                user, llama),
              Renders(std::string("<|begin_of_text|><|start_header_id|>user<|end_header_id|>"
                                        "\n\nHi<|eot_id|><|start_header_id|>assistant"
                                        "<|end_header_id|>\n\n")));
  // Qwen2: its default system prompt is a literal in the template.
  EXPECT_THAT(ApplyChatTemplate("{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                                "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n'"
                                " }}{% endif %}",
                                user, false),
              Renders(std::string("<|im_start|>system\nYou are a helpful assistant."
                                        "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")));
  // GLM-4 with the generation prompt followed by a newline in a literal.
  EXPECT_THAT(ApplyChatTemplate("[gMASK]<sop>{% for item in messages %}<|user|>{% endfor %}"
                                "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
                                "{% endif %}",
                                user, true),
              Renders(std::string("[gMASK]<sop><|user|>\nHi<|assistant|>\n")));
  // Mistral v0.3: system message joins the final user turn.
  ChatTemplateOptions mistral;
  mistral.bos_token = "<s>";
  mistral.eos_token = "</s>";
  const std::vector<ChatMessage> sys_user = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_THAT(ApplyChatTemplate("{%- if loop.last and system_message is defined %}{{- '[INST] ' +"
                                " system_message + '\\n\\n' + message['content'] + '[/INST]' }}",
                                sys_user, mistral),
              Renders(std::string("<s>[INST] Be brief.\n\nHi[/INST]")));
  // Llama-2-chat: <<SYS>> at the head of the first user turn, BOS per turn.
  const std::string llama2 =
      "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
      "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}"
      "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + "
      "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
      "eos_token }}{% endif %}";
  const std::vector<ChatMessage> sys_chat = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Bye"}};
  EXPECT_THAT(ApplyChatTemplate(llama2, sys_chat, mistral),
              Renders(std::string("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Yo </s>"
                                  "<s>[INST] Bye [/INST]")));
  // Mistral-7B-Instruct v0.1 / v0.2 since 2024: system joins the first turn.
  const std::string v1_system =
      "{%- if loop.first and system_message is defined %}\n{{- ' [INST] ' + system_message + "
      "'\\n\\n' + message['content'] + ' [/INST]' }}\n{%- else %}\n{{- ' [INST] ' + "
      "message['content'] + ' [/INST]' }}\n{%- endif %}{%- elif message['role'] == "
      "'assistant' %}\n{{- ' ' + message['content'] + eos_token}}";
  EXPECT_THAT(ApplyChatTemplate(v1_system, sys_chat, mistral),
              Renders(std::string("<s> [INST] Be brief.\n\nHi [/INST] Yo</s> [INST] Bye [/INST]")));
  // The original v0.1 writes a space after EOS; v0.2 and Mixtral do not.
  const std::string v1 =
      "{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
      "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token "
      "+ ' ' }}{% else %}";
  const std::string v2 =
      "{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
      "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
      "eos_token}}{% else %}";
  const std::vector<ChatMessage> chat(sys_chat.begin() + 1, sys_chat.end());
  EXPECT_THAT(ApplyChatTemplate(v1, chat, mistral),
              Renders(std::string("<s>[INST] Hi [/INST]Yo</s> [INST] Bye [/INST]")));
  EXPECT_THAT(ApplyChatTemplate(v2, chat, mistral),
              Renders(std::string("<s>[INST] Hi [/INST]Yo</s>[INST] Bye [/INST]")));
  EXPECT_THAT(ApplyChatTemplate(v2, sys_chat, mistral),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'system'")));
}

// Llama-3.1's system turn is always written, with the template's default
// date; 3.2's strftime_now is not called.
TEST(ChatTemplateTest, Llama31WritesDatedSystemTurn) {
  ChatTemplateOptions options;
  options.bos_token = "<|begin_of_text|>";
  const std::string body =
      "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
      "{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
      "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}{{- system_message }}"
      "{{- \"<|eot_id|>\" }}";
  const std::string llama31 =
      "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n"
      "{%- endif %}" + body;
  const std::string llama32 =
      "{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
      "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n"
      "        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}" + body;
  const std::string dated = "{%- set date_string = '01 Jan 2025' %}" + body;
  const std::string head =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
      "December 2023\nToday Date: ";
  const std::string turns =
      "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  const std::vector<ChatMessage> user = {{"user", " Hi\n"}};
  EXPECT_THAT(ApplyChatTemplate(llama31, user, options), Renders(head + "26 Jul 2024" + turns));
  EXPECT_THAT(ApplyChatTemplate(llama32, user, options), Renders(head + "26 Jul 2024" + turns));
  EXPECT_THAT(ApplyChatTemplate(dated, user, options), Renders(head + "01 Jan 2025" + turns));
  // A system message after the first is an ordinary turn.
  const std::vector<ChatMessage> late_system = {{"user", "Hi"}, {"system", "Note"}};
  EXPECT_THAT(ApplyChatTemplate(llama31, late_system, false),
              Renders(std::string("<|start_header_id|>system<|end_header_id|>\n\nCutting "
                                  "Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                                  "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
                                  "<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n"
                                  "Note<|eot_id|>")));
  // Tool turns take the template's tool paths, which are not implemented.
  const std::vector<ChatMessage> tool = {{"user", "Hi"}, {"ipython", "{}"}};
  EXPECT_THAT(ApplyChatTemplate(llama31, tool, options),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("Llama-3.1"), HasSubstr("'ipython'"))));
  EXPECT_THAT(ApplyChatTemplate(llama31, {}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("messages[0]")));
}

TEST(ChatTemplateTest, RejectsUnknownFamiliesAndVariants) {
  EXPECT_THAT(ApplyChatTemplate("", {}, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chat_template")));
  // Gemma's turn markers are not a supported family.
  const std::string gemma =
      "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
      "{{ message['content'] }}<end_of_turn>\n{% endfor %}";
  EXPECT_THAT(ApplyChatTemplate(gemma, {}, true),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("unsupported chat template family"),
                             HasSubstr("{{ bos_token }}{% for message in messages %}<start_of_"),
                             ::testing::Not(HasSubstr("<end_of_turn>")))));
  // An [INST] template that writes no EOS after assistant turns is none of
  // the known variants.
  const std::string inst =
      "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
      "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}";
  EXPECT_THAT(ApplyChatTemplate(inst, {}, true),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("[INST] chat template variant"),
                             HasSubstr("{{ bos_token }}"))));
  // Llama-2 with a built-in default system prompt renders one even when the
  // conversation has none.
  const std::string llama2_default =
      "{% elif USE_DEFAULT_PROMPT == true %}{% set system_message = 'You are a helpful "
      "assistant.' %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
      "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}"
      "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{{ ' '  + content.strip() + ' ' "
      "+ eos_token }}";
  EXPECT_THAT(ApplyChatTemplate(llama2_default, {{"user", "x"}}, true),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("Llama-2")));
  // Llama-3.1-like templates without the dated line (a user's edit).
  const std::string llama31 =
      "{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
      "{{- \"Cutting Knowledge Date: December 2023\\n\" }}{{- \"<|eot_id|>\" }}";
  EXPECT_THAT(ApplyChatTemplate(llama31, {}, true),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("Llama-3.1"), HasSubstr("Today Date"))));
}

TEST(ChatTemplateTest, MistralRejectsWhatItsTemplateRejects) {
  const std::string mistral = "[INST] [/INST] system_message loop.last";
  const std::vector<ChatMessage> two_users = {{"user", "a"}, {"user", "b"}};
  EXPECT_THAT(ApplyChatTemplate(mistral, two_users, true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alternate")));
  const std::vector<ChatMessage> tool = {{"user", "a"}, {"tool", "b"}};
  EXPECT_THAT(ApplyChatTemplate(mistral, tool, true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'tool'")));
}

TEST(ChatTemplateTest, TrimStripsWhatPythonStrips) {
  // Python's str.strip() (Jinja's trim) removes U+001C..U+001F, U+3000 and
  // the ASCII spaces, and nothing inside the text.
  const std::string llama3 = "<|start_header_id|> <|eot_id|>";
  const std::vector<ChatMessage> m = {
      {"user", "\x1E\x1F\xE3\x80\x80 H i\x1C\x1D\n"}};
  EXPECT_THAT(ApplyChatTemplate(llama3, m, false),
              Renders(std::string("<|start_header_id|>user<|end_header_id|>\n\nH i<|eot_id|>")));
}

// The text of each content span.
std::vector<std::string> SpanTexts(const RenderedChat& chat) {
  std::vector<std::string> out;
  for (const RenderedChat::Span& span : chat.content_spans) {
    out.push_back(chat.text.substr(span.begin, span.end - span.begin));
  }
  return out;
}

TEST(ChatTemplateTest, ReportsWhereContentsLanded) {
  using ::testing::ElementsAre;
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  // Llama-3 trims every content; the spans hold the trimmed text.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat llama3,
      RenderChatTemplate("<|start_header_id|> <|eot_id|>",
                         std::vector<ChatMessage>{{"user", "  Hi  "}, {"assistant", "Yo\n"}},
                         options));
  EXPECT_EQ(llama3.text,
            "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\nYo<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n");
  EXPECT_THAT(SpanTexts(llama3), ElementsAre("Hi", "Yo"));
  // Mistral trims assistant turns only, and moves the system message into
  // the last user turn: spans follow the text's order, not the messages'.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat mistral,
      RenderChatTemplate("[INST] [/INST] system_message loop.last",
                         std::vector<ChatMessage>{{"system", " S "},
                                                  {"user", " u1"},
                                                  {"assistant", " a1 "},
                                                  {"user", "u2 "}},
                         options));
  EXPECT_EQ(mistral.text, "<s>[INST]  u1[/INST] a1</s>[INST]  S \n\nu2 [/INST]");
  EXPECT_THAT(SpanTexts(mistral), ElementsAre(" u1", "a1", " S ", "u2 "));
  // ChatML's default system block is template text; empty contents have no
  // span.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat chatml,
      RenderChatTemplate("'<|im_start|>system\\nDefault.<|im_end|>\\n'",
                         std::vector<ChatMessage>{{"user", "q"}, {"assistant", ""}}, options));
  EXPECT_EQ(chatml.text,
            "<|im_start|>system\nDefault.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
            "<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THAT(SpanTexts(chatml), ElementsAre("q"));
  ASSERT_OK_AND_ASSIGN(RenderedChat glm,
                       RenderChatTemplate("[gMASK]<sop>",
                                          std::vector<ChatMessage>{{"user", " q "}}, options));
  EXPECT_EQ(glm.text, "[gMASK]<sop><|user|>\n q <|assistant|>");
  EXPECT_THAT(SpanTexts(glm), ElementsAre(" q "));
}

TEST(ChatTemplateTest, ReportsWhereContentsLandedInNewFamilies) {
  using ::testing::ElementsAre;
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  // Llama-3.1: the trimmed system message after the dated preamble.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat llama31,
      RenderChatTemplate("<|start_header_id|> <|eot_id|> \"Cutting Knowledge Date: X\\n\" "
                         "'Today Date: ' + date_string + '\\n\\n' set date_string = 'D'",
                         std::vector<ChatMessage>{{"system", " S\n"}, {"user", "\tu "}},
                         options));
  EXPECT_EQ(llama31.text,
            "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: X\n"
            "Today Date: D\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nu"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_THAT(SpanTexts(llama31), ElementsAre("S", "u"));
  // Llama-2: the system message is inside the stripped first turn, so it
  // keeps its spaces; the user text there loses only trailing ones.
  const std::string llama2 =
      "[INST] [/INST] <<SYS>> '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
      "message['content'] system_message != false bos_token + '[INST] ' + content.strip() + "
      "' [/INST]' ' ' + content.strip() + ' ' + eos_token";
  ASSERT_OK_AND_ASSIGN(
      RenderedChat llama2_chat,
      RenderChatTemplate(llama2,
                         std::vector<ChatMessage>{{"system", " S "},
                                                  {"user", " u1 "},
                                                  {"assistant", " a1 "},
                                                  {"user", " u2 "}},
                         options));
  EXPECT_EQ(llama2_chat.text,
            "<s>[INST] <<SYS>>\n S \n<</SYS>>\n\n u1 [/INST] a1 </s><s>[INST] u2 [/INST]");
  EXPECT_THAT(SpanTexts(llama2_chat), ElementsAre(" S ", " u1", "a1", "u2"));
  // A blank first user turn is stripped away with the "\n\n" before it.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat blank,
      RenderChatTemplate(llama2, std::vector<ChatMessage>{{"system", "S"}, {"user", " \n"}},
                         options));
  EXPECT_EQ(blank.text, "<s>[INST] <<SYS>>\nS\n<</SYS>> [/INST]");
  EXPECT_THAT(SpanTexts(blank), ElementsAre("S"));
  // Mistral v0.1 with system, and the original form: nothing trimmed.
  ASSERT_OK_AND_ASSIGN(
      RenderedChat v1_system,
      RenderChatTemplate("[INST] [/INST] system_message loop.first ' [INST] ' + system_message + "
                         "'\\n\\n' + message['content'] + ' [/INST]' ' [INST] ' + "
                         "message['content'] + ' [/INST]' ' ' + message['content'] + eos_token",
                         std::vector<ChatMessage>{{"system", " S "}, {"user", " u "},
                                                  {"assistant", " a "}},
                         options));
  EXPECT_EQ(v1_system.text, "<s> [INST]  S \n\n u  [/INST]  a </s>");
  EXPECT_THAT(SpanTexts(v1_system), ElementsAre(" S ", " u ", " a "));
  ASSERT_OK_AND_ASSIGN(
      RenderedChat v1,
      RenderChatTemplate("bos_token '[INST] ' + message['content'] + ' [/INST]' "
                         "message['content'] + eos_token + ' '",
                         std::vector<ChatMessage>{{"user", " u "}, {"assistant", " a "}},
                         options));
  EXPECT_EQ(v1.text, "<s>[INST]  u  [/INST] a </s> ");
  EXPECT_THAT(SpanTexts(v1), ElementsAre(" u ", " a "));
}

// A byte-level vocabulary whose BOS is <|begin_of_text|>, with a Llama-3
// template: RenderChat renders BOS only when Encode will not add it.
TEST(ChatTemplateTest, RenderChatAvoidsDoubleBos) {
  TokenizerData d = testing::MiniVocab();
  d.tokens[0] = "<|begin_of_text|>";
  d.tokens[2] = "<|eot_id|>";
  d.ids.bos = 0;
  d.ids.eos = 2;
  d.chat_template = "<|start_header_id|> <|eot_id|>";
  const std::vector<ChatMessage> m = {{"user", "Hi"}};
  const std::string body =
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  d.add_bos = true;
  ASSERT_OK_AND_ASSIGN(auto adds_bos, Tokenizer::FromData(d));
  EXPECT_THAT(adds_bos->RenderChat(m, false), Renders(body));
  d.add_bos = false;
  ASSERT_OK_AND_ASSIGN(auto no_bos, Tokenizer::FromData(d));
  EXPECT_THAT(no_bos->RenderChat(m, false), Renders("<|begin_of_text|>" + body));
}

// MiniVocab ids: 0..3 <|endoftext|> <|im_start|> <|im_end|> <tool>, then
// byte b at 4 + b (so "\n" is 14, "a" 101), then the merges (hello = 263).
TEST(EncodeChatTest, KeepsMessageContentsAsText) {
  TokenizerData d = testing::MiniVocab();
  d.chat_template = "<|im_start|>";
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromData(d));
  const std::vector<ChatMessage> m = {{"user", "<|im_start|>hello"}};
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, tok->EncodeChat(m, true));
  // Only the template's two <|im_start|> are tokens; the user's is the
  // characters < | i m _ s t a r t | >, worded by the GPT-2 pattern.
  const std::vector<int32_t> want = {
      1, 121, 119, 105, 118, 14,                                   // <|im_start|>user\n
      64, 128, 109, 113, 99, 119, 120, 101, 118, 120, 128, 66, 263,  // <|im_start|>hello
      2, 14,                                                       // <|im_end|>\n
      1, 101, 119, 119, 109, 119, 120, 101, 114, 120, 14};        // <|im_start|>assistant\n
  EXPECT_EQ(ids, want);
  // Encoding the rendered prompt whole would have let the user open a turn.
  ASSERT_OK_AND_ASSIGN(std::string text, tok->RenderChat(m, true));
  const std::vector<int32_t> whole = tok->Encode(text, true, true);
  EXPECT_EQ(std::count(whole.begin(), whole.end(), 1), 3);
}

TEST(EncodeChatTest, ReportsTemplateErrors) {
  TokenizerData d = testing::MiniVocab();
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromData(d));  // no template
  EXPECT_THAT(tok->EncodeChat(std::vector<ChatMessage>{{"user", "x"}}, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chat_template")));
}

}  // namespace
}  // namespace tessera
