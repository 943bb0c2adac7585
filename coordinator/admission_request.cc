#include "coordinator/admission_request.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "coordinator/request_spec.h"

namespace tessera {

absl::StatusOr<std::vector<int32_t>> PromptIds(const Tokenizer& tokenizer, const Prompt& prompt) {
  if (const auto* t = std::get_if<TextPrompt>(&prompt)) {
    if (t->text.empty()) return FieldError(t->field, t->field + " is empty");
    // As in `tessera run`, special-token text in a raw prompt is honoured.
    return tokenizer.Encode(t->text, /*add_special=*/true, /*parse_special=*/true);
  }
  if (const auto* ids = std::get_if<IdsPrompt>(&prompt)) return ids->ids;
  if (const auto* chat = std::get_if<ChatPromptMessages>(&prompt)) {
    return ChatPromptIds(tokenizer, chat->messages, chat->field);
  }
  return absl::InvalidArgumentError("no prompt");  // callers check for monostate first
}

SamplingParams ResolveSampling(const SamplingDefaults& given, const SamplingDefaults& model,
                               const SamplingParams& api) {
  return given.Apply(model.Apply(api));
}

absl::StatusOr<RequestSpec> ToRequestSpec(const Tokenizer& tokenizer, AdmissionRequest request,
                                          const SamplingDefaults& model_defaults,
                                          std::string request_id) {
  if (std::holds_alternative<std::monostate>(request.prompt)) {
    const std::string& what = request.prompt_required;
    return FieldError(what.substr(0, what.find(':')), what);
  }
  RequestSpec spec;
  ASSIGN_OR_RETURN(spec.prompt, PromptIds(tokenizer, request.prompt));
  spec.request_id = std::move(request_id);
  spec.max_tokens = request.max_tokens;
  spec.sampling = ResolveSampling(request.sampling, model_defaults, request.api_defaults);
  spec.stop = std::move(request.stop);
  spec.stop_token_ids = std::move(request.stop_token_ids);
  spec.logprobs = request.logprobs;
  spec.top_logprobs = request.top_logprobs;
  spec.ignore_eos = request.ignore_eos;
  return spec;
}

std::string PromptForAudit(const Prompt& prompt) {
  if (const auto* text = std::get_if<TextPrompt>(&prompt)) return text->text;
  if (const auto* ids = std::get_if<IdsPrompt>(&prompt)) return absl::StrJoin(ids->ids, " ");
  if (const auto* chat = std::get_if<ChatPromptMessages>(&prompt)) {
    std::string out;
    for (const ChatMessage& m : chat->messages) absl::StrAppend(&out, m.role, ": ", m.content, "\n");
    return out;
  }
  return "";
}

}  // namespace tessera
