// Rendering a conversation into a prompt with the model's chat template.
//
// Chat templates are Jinja programs stored in tokenizer.chat_template. Rather
// than embed a Jinja interpreter, this recognises the template's family from
// its text and renders that family natively:
//   - ChatML (the template mentions "<|im_start|>"): each message becomes
//     "<|im_start|>ROLE\nCONTENT<|im_end|>\n". If the template carries a
//     fixed system block (a string literal starting "<|im_start|>system" and
//     containing "<|im_end|>", as SmolLM2's does), that block is emitted
//     before the first message when the first message is not a system one.
//     With add_generation_prompt, "<|im_start|>assistant\n" follows.
// Output is exactly what the Jinja template renders for SmolLM2 (tested
// against the real template text). Pure function; thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_
#define TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

// FAILED_PRECONDITION if `template_text` is empty (the model has none);
// UNIMPLEMENTED, quoting the template's first 60 characters, if its family
// is not recognised.
absl::StatusOr<std::string> ApplyChatTemplate(const std::string& template_text,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_CHAT_TEMPLATE_H_
