// Rendering a conversation into a prompt with the model's chat template.
//
// Chat templates are Jinja programs stored in tokenizer.chat_template (or
// tokenizer_config.json). Rather than embed a Jinja interpreter, this
// recognises the template's family by markers in its text and renders that
// family natively, byte for byte as Jinja renders the family's templates
// (tests/tokenizer/chat_template_test.cc, against jinja2). Checked in this
// order:
//   Llama-3   "<|start_header_id|>" and "<|eot_id|>", no "Cutting Knowledge
//             Date": bos_token before the first turn; each turn
//             "<|start_header_id|>ROLE<|end_header_id|>\n\n" + trimmed
//             content + "<|eot_id|>"; the generation prompt is the
//             assistant header.
//   Llama-3.1 the same markers and "Cutting Knowledge Date" (3.1, 3.2, 3.3),
//             without tools: bos_token, then always a system turn whose body
//             is the template's cutoff literal ("Cutting Knowledge Date:
//             December 2023\n"), "Today Date: " + DATE + "\n\n" and the
//             trimmed system message if the first message is one; then the
//             other messages as Llama-3 turns. DATE is the template's default
//             date_string literal ("26 Jul 2024" in Meta's), what Jinja
//             renders when no date is passed. Hugging Face passes none but
//             defines strftime_now, which 3.2's template calls first (today's
//             date); this never does, so prompts do not change with the day.
//             The "Environment: ipython" line and tool blocks appear only
//             with tools, which are never given: roles other than system,
//             user and assistant are UNIMPLEMENTED. An empty conversation is
//             INVALID_ARGUMENT (the template reads messages[0]). Variants
//             without a "Today Date: " + date_string + "\n\n" line or a
//             default date literal are UNIMPLEMENTED.
//   ChatML    "<|im_start|>" (Qwen2, SmolLM2, ...): each message
//             "<|im_start|>ROLE\nCONTENT<|im_end|>\n". If the template holds
//             a string literal that starts "<|im_start|>system" and contains
//             "<|im_end|>" (Qwen2's "You are a helpful assistant.",
//             SmolLM2's longer prompt), that literal is emitted before the
//             first message when the first message is not a system one. The
//             generation prompt is "<|im_start|>assistant\n".
//   GLM-4     "[gMASK]<sop>": that prefix, then "<|ROLE|>\nCONTENT" per
//             message in order; the generation prompt is "<|assistant|>",
//             plus "\n" if the template writes one after it there.
//   [INST]    "[INST]" and "[/INST]"; the variant is told by markers matched
//             with whitespace outside string literals, Jinja's "-" and the
//             quote style ignored. None has a generation prompt. After the
//             optional first system message (where one is taken), roles must
//             alternate user/assistant, else INVALID_ARGUMENT, as the
//             templates raise (Llama-2's would silently drop a turn of
//             another role at an odd position; this refuses it).
//     Llama-2    "<<SYS>>" with Llama-2-chat's expressions
//                ('<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' +
//                message['content'], bos_token + '[INST] ' + content.strip()
//                + ' [/INST]', ' ' + content.strip() + ' ' + eos_token,
//                system_message != false) and no default system prompt
//                literal: each user turn bos_token + "[INST] " + stripped
//                content + " [/INST]" (one BOS per user turn, as Meta's
//                reference code encodes dialogs); the system message,
//                untrimmed, in "<<SYS>>\nSYSTEM\n<</SYS>>\n\n" at the head of
//                the first user turn, which is stripped as a whole; assistant
//                turns " " + trimmed content + " " + eos_token. An empty
//                conversation is INVALID_ARGUMENT (messages[0]).
//     Mistral v0.3  "system_message" and "loop.last": bos_token; user turns
//                "[INST] CONTENT[/INST]", the system message prepended as
//                "SYSTEM\n\n" to the user turn that ends the conversation
//                and dropped otherwise; assistant turns " " + trimmed content
//                + eos_token.
//     Mistral v0.1 with system (Mistral-7B-Instruct v0.1/v0.2 since 2024)
//                "system_message", "loop.first" and ' [INST] ' +
//                message['content'] + ' [/INST]': bos_token; user turns
//                " [INST] CONTENT [/INST]", the system message prepended as
//                "SYSTEM\n\n" to the first; assistant turns " " + content +
//                eos_token; nothing trimmed. An empty conversation is
//                INVALID_ARGUMENT (messages[0]).
//     Mistral legacy (original v0.1/v0.2 and Mixtral-8x7B-Instruct) no
//                "system_message", '[INST] ' + message['content'] +
//                ' [/INST]' and message['content'] + eos_token: bos_token;
//                user turns "[INST] CONTENT [/INST]"; assistant turns
//                CONTENT + eos_token, then " " where the template writes
//                eos_token + ' ' (v0.1). A system message is
//                INVALID_ARGUMENT, as the template raises.
//             Other [INST] templates are UNIMPLEMENTED.
// "Trimmed" is Jinja's trim (Python's str.strip(): ASCII and Unicode
// whitespace, U+001C..U+001F included).
//
// RenderChatTemplate also reports where each message's content landed, so
// that callers can tokenize contents as plain text and only the template's
// own text with special-token parsing (Tokenizer::EncodeChat): a user who
// types "<|im_start|>" must not open a turn.
//
// Pure functions; thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_
#define TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

struct ChatTemplateOptions {
  // Append the family's assistant header so the model answers next.
  bool add_generation_prompt = true;
  // What the template's bos_token / eos_token render as (the vocabulary's
  // BOS / EOS texts). Tokenizer::RenderChat fills these from the vocabulary.
  std::string bos_token;
  std::string eos_token;
};

// A rendered prompt and which of its bytes are message content.
struct RenderedChat {
  struct Span {
    size_t begin;  // byte offsets into `text`, [begin, end)
    size_t end;
  };
  std::string text;
  // Each non-empty message content as placed in `text` (after the
  // template's trim), in order. Everything else, roles included, is the
  // template's own text.
  std::vector<Span> content_spans;
};

// Renders `messages` with the template's family (see above).
// FAILED_PRECONDITION if `template_text` is empty (the model has none);
// UNIMPLEMENTED, quoting the template's first 60 characters, if its family
// or variant is not one of the above; INVALID_ARGUMENT for a conversation
// the template itself would reject.
absl::StatusOr<RenderedChat> RenderChatTemplate(const std::string& template_text,
                                                absl::Span<const ChatMessage> messages,
                                                const ChatTemplateOptions& options);

// RenderChatTemplate's text alone.
absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              const ChatTemplateOptions& options);

// The same with bos_token and eos_token rendering as "". Right for
// templates that use neither (ChatML, GLM-4) and for Llama-3/3.1 when the
// prompt is encoded with add_special and the vocabulary adds BOS; wrong for
// Mistral and Llama-2 (no </s> after assistant turns, and Llama-2 loses the
// BOS of every user turn after the first). Prefer Tokenizer::RenderChat or
// Tokenizer::EncodeChat, which know the vocabulary's tokens.
absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_
