// Tokenizer's chat methods: rendering with the vocabulary's BOS/EOS texts,
// and encoding a rendered conversation with message contents kept as text.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "common/tokenizer/tokenizer.h"

namespace tessera {
namespace {

// The template rendered with the vocabulary's BOS/EOS texts, less a leading
// BOS text when Encode(add_special=true) will add BOS itself.
absl::StatusOr<RenderedChat> RenderForVocabulary(const Tokenizer& tok,
                                                 absl::Span<const ChatMessage> messages,
                                                 bool add_generation_prompt) {
  ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.bos_token = tok.token_text(tok.bos_id());
  options.eos_token = tok.token_text(tok.eos_id());
  ASSIGN_OR_RETURN(RenderedChat chat,
                   RenderChatTemplate(tok.chat_template(), messages, options));
  const std::string& bos = options.bos_token;
  const bool bos_is_template_text =
      chat.content_spans.empty() || chat.content_spans[0].begin >= bos.size();
  if (tok.add_bos() && tok.bos_id() >= 0 && !bos.empty() && bos_is_template_text &&
      std::string_view(chat.text).substr(0, bos.size()) == bos) {
    chat.text.erase(0, bos.size());
    for (RenderedChat::Span& span : chat.content_spans) {
      span.begin -= bos.size();
      span.end -= bos.size();
    }
  }
  return chat;
}

}  // namespace

absl::StatusOr<std::string> Tokenizer::RenderChat(absl::Span<const ChatMessage> messages,
                                                  bool add_generation_prompt) const {
  ASSIGN_OR_RETURN(RenderedChat chat,
                   RenderForVocabulary(*this, messages, add_generation_prompt));
  return std::move(chat.text);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodeChat(
    absl::Span<const ChatMessage> messages, bool add_generation_prompt) const {
  ASSIGN_OR_RETURN(RenderedChat chat,
                   RenderForVocabulary(*this, messages, add_generation_prompt));
  const std::string_view text = chat.text;
  std::vector<TextSegment> segments;
  size_t pos = 0;
  for (const RenderedChat::Span& span : chat.content_spans) {
    segments.push_back({text.substr(pos, span.begin - pos), /*parse_special=*/true});
    segments.push_back({text.substr(span.begin, span.end - span.begin), false});
    pos = span.end;
  }
  segments.push_back({text.substr(pos), /*parse_special=*/true});
  return EncodeSegments(segments, /*add_special=*/true);
}

}  // namespace tessera
