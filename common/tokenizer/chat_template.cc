#include "common/tokenizer/chat_template.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
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

// Builds a RenderedChat: the template's own text and message contents are
// appended through different calls so that the contents' spans are known.
class ChatWriter {
 public:
  void Template(std::string_view text) { out_.text.append(text.data(), text.size()); }
  void Content(std::string_view text) {
    if (text.empty()) return;
    const size_t begin = out_.text.size();
    out_.text.append(text.data(), text.size());
    out_.content_spans.push_back({begin, out_.text.size()});
  }
  RenderedChat Take() { return std::move(out_); }

 private:
  RenderedChat out_;
};

void RenderChatMl(std::string_view template_text, absl::Span<const ChatMessage> messages,
                  bool add_generation_prompt, ChatWriter* out) {
  if (!messages.empty() && messages[0].role != "system") {
    if (std::optional<std::string> block = FindDefaultSystemBlock(template_text)) {
      out->Template(*block);
    }
  }
  for (const ChatMessage& m : messages) {
    out->Template(absl::StrCat(ToAbsl(kImStart), m.role, "\n"));
    out->Content(m.content);
    out->Template(absl::StrCat(ToAbsl(kImEnd), "\n"));
  }
  if (add_generation_prompt) out->Template(absl::StrCat(ToAbsl(kImStart), "assistant\n"));
}

// UTF-8 forms of the characters Python's str.isspace() accepts.
constexpr std::string_view kWhitespace[] = {
    "\t", "\n", "\v", "\f", "\r", "\x1C", "\x1D", "\x1E", "\x1F", " ", "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80",
    "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84",
    "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89",
    "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
    "\xE3\x80\x80"};

// Python's str.rstrip() with no argument.
std::string_view TrimRight(std::string_view text) {
  bool changed = true;
  while (changed && !text.empty()) {
    changed = false;
    for (std::string_view ws : kWhitespace) {
      if (text.size() >= ws.size() && text.substr(text.size() - ws.size()) == ws) {
        text.remove_suffix(ws.size());
        changed = true;
      }
    }
  }
  return text;
}

// Jinja's `| trim`, Python's str.strip().
std::string_view Trim(std::string_view text) {
  text = TrimRight(text);
  bool changed = true;
  while (changed && !text.empty()) {
    changed = false;
    for (std::string_view ws : kWhitespace) {
      if (text.substr(0, ws.size()) == ws) {
        text.remove_prefix(ws.size());
        changed = true;
      }
    }
  }
  return text;
}

// The template text with whitespace outside string literals removed and
// each literal re-quoted with single quotes (unless it holds one), so that
// variant markers match however a template spaces and quotes its
// expressions. Jinja's whitespace-control dashes go too, so
// {{ ' ' + eos_token }} and {{- " " +eos_token }} both read {{' '+eos_token}}.
std::string CanonicalTemplate(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      size_t end = i + 1;
      while (end < text.size() && text[end] != c) end += text[end] == '\\' ? 2 : 1;
      end = std::min(end, text.size());
      const std::string_view body = text.substr(i + 1, end - i - 1);
      const char quote = body.find('\'') == std::string_view::npos ? '\'' : c;
      out.push_back(quote);
      out.append(body.data(), body.size());
      if (end < text.size()) out.push_back(quote);
      i = end;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-') continue;
    out.push_back(c);
  }
  return out;
}

void RenderLlama3Turn(const ChatMessage& m, ChatWriter* out) {
  out->Template(absl::StrCat("<|start_header_id|>", m.role, "<|end_header_id|>\n\n"));
  out->Content(Trim(m.content));
  out->Template("<|eot_id|>");
}

void RenderLlama3(absl::Span<const ChatMessage> messages, const ChatTemplateOptions& options,
                  ChatWriter* out) {
  for (size_t i = 0; i < messages.size(); ++i) {
    // The template attaches BOS to the first turn, so no turns, no BOS.
    if (i == 0) out->Template(options.bos_token);
    RenderLlama3Turn(messages[i], out);
  }
  if (options.add_generation_prompt) {
    out->Template("<|start_header_id|>assistant<|end_header_id|>\n\n");
  }
}

absl::Status Unsupported(std::string_view template_text, std::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(ToAbsl(what), "; template starts with \"",
                   absl::CHexEscape(ToAbsl(template_text.substr(0, 60))), "\""));
}

bool Contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

// What Llama-3.1+ templates write between the system header and the system
// message when no tools are given: their knowledge-cutoff literal, then
// "Today Date: " + date_string + "\n\n" with date_string at the template's
// default literal (what it renders when the caller passes no date).
absl::StatusOr<std::string> Llama31SystemPreamble(std::string_view text) {
  constexpr std::string_view kCutoff = "Cutting Knowledge Date:";
  const size_t at = text.find(kCutoff);
  const size_t open = text.find_last_of("'\"", at);
  std::optional<std::string> cutoff;
  if (open != std::string_view::npos) cutoff = ParseStringLiteral(text, open);
  if (!cutoff.has_value() || cutoff->compare(0, kCutoff.size(), kCutoff.data()) != 0) {
    return Unsupported(text, "Llama-3.1 chat template: its \"Cutting Knowledge Date\" is not "
                             "one string literal");
  }
  const std::string canonical = CanonicalTemplate(text);
  if (!Contains(canonical, "'Today Date: '+date_string+'\\n\\n'")) {
    return Unsupported(text, "Llama-3.1 chat template variant without the \"Today Date: \" + "
                             "date_string + \"\\n\\n\" line is not supported");
  }
  // The first literal assigned to date_string: in 3.2's form the literal
  // is the fallback after `strftime_now(...)`, which this does not run.
  constexpr std::string_view kDefault = "date_string='";
  const size_t def = canonical.find(kDefault);
  std::optional<std::string> date;
  if (def != std::string::npos) date = ParseStringLiteral(canonical, def + kDefault.size() - 1);
  if (!date.has_value()) {
    return Unsupported(text, "Llama-3.1 chat template without a default date_string literal "
                             "is not supported");
  }
  return absl::StrCat(*cutoff, "Today Date: ", *date, "\n\n");
}

absl::Status RenderLlama31(std::string_view template_text,
                           absl::Span<const ChatMessage> messages,
                           const ChatTemplateOptions& options, ChatWriter* out) {
  ASSIGN_OR_RETURN(const std::string preamble, Llama31SystemPreamble(template_text));
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        "chat template (Llama-3.1): the template reads messages[0], so the conversation "
        "needs at least one message");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::UnimplementedError(absl::StrCat(
          "chat template (Llama-3.1): message ", i, " has role '", role,
          "'; tool calls and tool results (the template's tools/ipython paths) are not "
          "supported, only system, user and assistant turns"));
    }
  }
  out->Template(options.bos_token);
  out->Template(absl::StrCat("<|start_header_id|>system<|end_header_id|>\n\n", preamble));
  if (messages[0].role == "system") {
    out->Content(Trim(messages[0].content));
    messages.remove_prefix(1);
  }
  out->Template("<|eot_id|>");
  for (const ChatMessage& m : messages) RenderLlama3Turn(m, out);
  if (options.add_generation_prompt) {
    out->Template("<|start_header_id|>assistant<|end_header_id|>\n\n");
  }
  return absl::OkStatus();
}

// Whether the template writes a newline right after the "<|assistant|>" of
// its generation prompt (raw in the template text, or "\n" in a literal).
bool GlmPromptEndsInNewline(std::string_view text) {
  constexpr std::string_view kAssistant = "<|assistant|>";
  const size_t flag = text.find("add_generation_prompt");
  if (flag == std::string_view::npos) return false;
  const size_t at = text.find(kAssistant, flag);
  if (at == std::string_view::npos || text.find("endif", flag) < at) return false;
  const std::string_view rest = text.substr(at + kAssistant.size());
  return rest.substr(0, 1) == "\n" || rest.substr(0, 2) == "\\n";
}

void RenderGlm4(std::string_view template_text, absl::Span<const ChatMessage> messages,
                bool add_generation_prompt, ChatWriter* out) {
  out->Template("[gMASK]<sop>");
  for (const ChatMessage& m : messages) {
    out->Template(absl::StrCat("<|", m.role, "|>\n"));
    out->Content(m.content);
  }
  if (add_generation_prompt) {
    out->Template("<|assistant|>");
    if (GlmPromptEndsInNewline(template_text)) out->Template("\n");
  }
}

// The [INST] templates' shared rule: user turns at even positions (after
// the system message, for templates that take one), assistant at odd.
absl::Status CheckAlternates(std::string_view family, absl::Span<const ChatMessage> messages,
                             size_t offset) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if ((role == "user") != (i % 2 == 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat template (", ToAbsl(family), "): message ", i + offset, " has role '", role,
          "'; ", offset > 0 ? "after the system message, " : "",
          "roles must alternate user/assistant"));
    }
    if (role != "user" && role != "assistant") {
      // The Llama-2 template would silently drop such a turn; refusing is
      // clearer than losing it.
      return absl::InvalidArgumentError(absl::StrCat(
          "chat template (", ToAbsl(family), "): role '", role, "' of message ", i + offset,
          " is not supported (only user and assistant",
          offset > 0 ? " after an optional first system message)" : ")"));
    }
  }
  return absl::OkStatus();
}

// The system message, if the conversation opens with one, split off.
const std::string* TakeSystem(absl::Span<const ChatMessage>* messages) {
  if (messages->empty() || (*messages)[0].role != "system") return nullptr;
  const std::string* system = &(*messages)[0].content;
  messages->remove_prefix(1);
  return system;
}

absl::Status RenderMistralV3(absl::Span<const ChatMessage> messages,
                             const ChatTemplateOptions& options, ChatWriter* out) {
  const std::string* system = TakeSystem(&messages);
  RETURN_IF_ERROR(CheckAlternates("Mistral v0.3", messages, system ? 1 : 0));
  out->Template(options.bos_token);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      out->Template("[INST] ");
      if (system != nullptr && i + 1 == messages.size()) {
        out->Content(*system);
        out->Template("\n\n");
      }
      out->Content(m.content);
      out->Template("[/INST]");
    } else {
      out->Template(" ");
      out->Content(Trim(m.content));
      out->Template(options.eos_token);
    }
  }
  return absl::OkStatus();
}

// Mistral-7B-Instruct v0.1 / v0.2 as revised in 2024: the system message
// joins the first user turn; nothing is trimmed.
absl::Status RenderMistralV1System(absl::Span<const ChatMessage> messages,
                                   const ChatTemplateOptions& options, ChatWriter* out) {
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        "chat template (Mistral v0.1): the template reads messages[0], so the conversation "
        "needs at least one message");
  }
  const std::string* system = TakeSystem(&messages);
  RETURN_IF_ERROR(CheckAlternates("Mistral v0.1", messages, system ? 1 : 0));
  out->Template(options.bos_token);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      out->Template(" [INST] ");
      if (system != nullptr && i == 0) {
        out->Content(*system);
        out->Template("\n\n");
      }
      out->Content(m.content);
      out->Template(" [/INST]");
    } else {
      out->Template(" ");
      out->Content(m.content);
      out->Template(options.eos_token);
    }
  }
  return absl::OkStatus();
}

// The original Mistral-7B-Instruct v0.1 / v0.2 and Mixtral-8x7B-Instruct
// templates: no system message; v0.1 writes a space after each EOS.
absl::Status RenderMistralLegacy(absl::Span<const ChatMessage> messages, bool space_after_eos,
                                 const ChatTemplateOptions& options, ChatWriter* out) {
  RETURN_IF_ERROR(CheckAlternates("Mistral v0.1/v0.2, no system role", messages, 0));
  out->Template(options.bos_token);
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      out->Template("[INST] ");
      out->Content(m.content);
      out->Template(" [/INST]");
    } else {
      out->Content(m.content);
      out->Template(space_after_eos ? absl::StrCat(options.eos_token, " ") : options.eos_token);
    }
  }
  return absl::OkStatus();
}

// Llama-2-chat: every user turn opens with BOS; the system message sits in
// a <<SYS>> block at the head of the first user turn, and that whole turn
// is stripped, so only its tail (the user's text) loses trailing space.
absl::Status RenderLlama2(absl::Span<const ChatMessage> messages,
                          const ChatTemplateOptions& options, ChatWriter* out) {
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        "chat template (Llama-2): the template reads messages[0], so the conversation needs "
        "at least one message");
  }
  const std::string* system = TakeSystem(&messages);
  RETURN_IF_ERROR(CheckAlternates("Llama-2", messages, system ? 1 : 0));
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      out->Template(absl::StrCat(options.bos_token, "[INST] "));
      if (system != nullptr && i == 0) {
        out->Template("<<SYS>>\n");
        out->Content(*system);
        out->Template("\n<</SYS>>");
        const std::string_view user = TrimRight(m.content);
        if (!user.empty()) {
          out->Template("\n\n");
          out->Content(user);
        }
      } else {
        out->Content(Trim(m.content));
      }
      out->Template(" [/INST]");
    } else {
      out->Template(" ");
      out->Content(Trim(m.content));
      out->Template(absl::StrCat(" ", options.eos_token));
    }
  }
  return absl::OkStatus();
}

// Picks and renders the [INST] variant. Markers are matched on the
// canonical text (see CanonicalTemplate).
absl::Status RenderInst(std::string_view text, absl::Span<const ChatMessage> messages,
                        const ChatTemplateOptions& options, ChatWriter* out) {
  const std::string canonical = CanonicalTemplate(text);
  auto has = [&canonical](std::string_view marker) { return Contains(canonical, marker); };
  if (has("<<SYS>>")) {
    if (has("'<<SYS>>\\n'+system_message+'\\n<</SYS>>\\n\\n'+message['content']") &&
        has("system_message!=false") &&
        has("bos_token+'[INST] '+content.strip()+' [/INST]'") &&
        has("' '+content.strip()+' '+eos_token") && !has("setsystem_message='")) {
      return RenderLlama2(messages, options, out);
    }
    return Unsupported(text, "this Llama-2 chat template variant is not supported (only "
                             "Llama-2-chat's: BOS per user turn, <<SYS>> block, no default "
                             "system prompt)");
  }
  if (has("system_message") && has("loop.last")) return RenderMistralV3(messages, options, out);
  if (has("system_message") && has("loop.first") &&
      has("' [INST] '+system_message+'\\n\\n'+message['content']+' [/INST]'") &&
      has("' [INST] '+message['content']+' [/INST]'") &&
      has("' '+message['content']+eos_token")) {
    return RenderMistralV1System(messages, options, out);
  }
  if (!has("system_message") && has("bos_token") &&
      has("'[INST] '+message['content']+' [/INST]'") && has("message['content']+eos_token")) {
    return RenderMistralLegacy(messages, has("message['content']+eos_token+' '"), options, out);
  }
  return Unsupported(text, "this [INST] chat template variant is not supported (known: "
                           "Llama-2-chat, Mistral-7B-Instruct v0.1/v0.2 and Mixtral in their "
                           "original and system-message forms, Mistral v0.3)");
}

}  // namespace

absl::StatusOr<RenderedChat> RenderChatTemplate(const std::string& template_text,
                                                absl::Span<const ChatMessage> messages,
                                                const ChatTemplateOptions& options) {
  if (template_text.empty()) {
    return absl::FailedPreconditionError(
        "the model has no chat template (tokenizer.chat_template is absent or empty)");
  }
  const std::string_view text = template_text;
  ChatWriter out;
  if (Contains(text, "<|start_header_id|>") && Contains(text, "<|eot_id|>")) {
    if (Contains(text, "Cutting Knowledge Date")) {
      RETURN_IF_ERROR(RenderLlama31(text, messages, options, &out));
    } else {
      RenderLlama3(messages, options, &out);
    }
    return out.Take();
  }
  if (Contains(text, kImStart)) {
    RenderChatMl(text, messages, options.add_generation_prompt, &out);
    return out.Take();
  }
  if (Contains(text, "[gMASK]<sop>")) {
    RenderGlm4(text, messages, options.add_generation_prompt, &out);
    return out.Take();
  }
  if (Contains(text, "[INST]") && Contains(text, "[/INST]")) {
    RETURN_IF_ERROR(RenderInst(text, messages, options, &out));
    return out.Take();
  }
  return Unsupported(text, "unsupported chat template family (known: Llama-3, Llama-3.1, "
                           "ChatML, GLM-4, Llama-2, Mistral)");
}

absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              const ChatTemplateOptions& options) {
  ASSIGN_OR_RETURN(RenderedChat rendered, RenderChatTemplate(template_text, messages, options));
  return std::move(rendered.text);
}

absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  return ApplyChatTemplate(template_text, messages, options);
}

}  // namespace tessera
