#include "common/tokenizer/chat_template.h"

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/string_view_compat.h"

namespace tessera {
namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

// Parses the Jinja string literal whose opening quote is at template_text[pos].
std::optional<std::string> ParseStringLiteral(std::string_view text, size_t pos) {
  const char quote = text[pos];
  std::string value;
  for (size_t i = pos + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == quote) return value;
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    if (++i >= text.size()) return std::nullopt;
    switch (text[i]) {
      case 'n': value.push_back('\n'); break;
      case 't': value.push_back('\t'); break;
      case 'r': value.push_back('\r'); break;
      default: value.push_back(text[i]); break;  // \\ \' \" and the rest
    }
  }
  return std::nullopt;  // unterminated
}

// The template's fixed default system block, if it has one.
std::optional<std::string> FindDefaultSystemBlock(std::string_view text) {
  const std::string needle = absl::StrCat(ToAbsl(kImStart), "system");
  for (size_t pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + 1)) {
    if (pos == 0 || (text[pos - 1] != '\'' && text[pos - 1] != '"')) continue;
    std::optional<std::string> literal = ParseStringLiteral(text, pos - 1);
    if (literal.has_value() && absl::StrContains(*literal, ToAbsl(kImEnd))) return literal;
  }
  return std::nullopt;
}

std::string RenderChatMl(std::string_view template_text, absl::Span<const ChatMessage> messages,
                         bool add_generation_prompt) {
  std::string out;
  if (!messages.empty() && messages[0].role != "system") {
    if (std::optional<std::string> block = FindDefaultSystemBlock(template_text)) {
      out += *block;
    }
  }
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, ToAbsl(kImStart), m.role, "\n", m.content);
    absl::StrAppend(&out, ToAbsl(kImEnd), "\n");
  }
  if (add_generation_prompt) absl::StrAppend(&out, ToAbsl(kImStart), "assistant\n");
  return out;
}

}  // namespace

absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  if (template_text.empty()) {
    return absl::FailedPreconditionError(
        "the model has no chat template (tokenizer.chat_template is absent or empty)");
  }
  if (absl::StrContains(template_text, ToAbsl(kImStart))) {
    return RenderChatMl(template_text, messages, add_generation_prompt);
  }
  return absl::UnimplementedError(
      absl::StrCat("unsupported chat template family; template starts with \"",
                   absl::CHexEscape(ToAbsl(std::string_view(template_text).substr(0, 60))), "\""));
}

}  // namespace tessera
