#include "coordinator/request_spec.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera {
namespace {

constexpr char kFieldPayload[] = "type.tessera.dev/request-field";

}  // namespace

absl::Status FieldError(const std::string& field, const std::string& message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kFieldPayload, absl::Cord(field));
  return s;
}

std::string FieldOf(const absl::Status& status) {
  const auto field = status.GetPayload(kFieldPayload);
  return field.has_value() ? std::string(*field) : std::string();
}

absl::StatusOr<std::vector<int32_t>> ChatPromptIds(const Tokenizer& tokenizer,
                                                   std::vector<ChatMessage> messages,
                                                   const std::string& field) {
  if (messages.empty()) return FieldError(field, absl::StrFormat("%s is empty", field));
  for (size_t i = 0; i < messages.size(); ++i) {
    std::string& role = messages[i].role;
    if (role == "developer") role = "system";
    // Roles are rendered as template text (GLM-4 builds its "<|user|>"
    // token from one), so only the known ones are let through.
    if (role != "system" && role != "user" && role != "assistant") {
      return FieldError(field, absl::StrFormat(
                                   "%s[%d].role = \"%s\"; must be system (or developer), user "
                                   "or assistant",
                                   field, i, role));
    }
  }
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.EncodeChat(messages, true);
  if (!ids.ok()) {
    return absl::Status(ids.status().code(),
                        absl::StrCat("chat template: ", ids.status().message()));
  }
  return ids;
}

absl::Status ValidateRequestSpec(const RequestSpec& spec, const RequestLimits& limits) {
  const std::string& id = spec.request_id;
  if (spec.prompt.empty()) {
    return FieldError("prompt", absl::StrFormat("request %s: the prompt is empty", id));
  }
  for (size_t i = 0; i < spec.prompt.size(); ++i) {
    if (spec.prompt[i] < 0 || spec.prompt[i] >= limits.vocab_size) {
      return FieldError("prompt", absl::StrFormat(
                                      "request %s: prompt token_ids[%d] = %d is outside the "
                                      "vocabulary [0, %d)",
                                      id, i, spec.prompt[i], limits.vocab_size));
    }
  }
  for (size_t i = 0; i < spec.stop_token_ids.size(); ++i) {
    const int32_t t = spec.stop_token_ids[i];
    if (t < 0 || t >= limits.vocab_size) {
      return FieldError("stop_token_ids",
                        absl::StrFormat("request %s: stop_token_ids[%d] = %d is outside the "
                                        "vocabulary [0, %d)",
                                        id, i, t, limits.vocab_size));
    }
  }
  for (size_t i = 0; i < spec.stop.size(); ++i) {
    // An empty stop string would match before the first token: every
    // request would end at once with no output.
    if (spec.stop[i].empty()) {
      return FieldError("stop", absl::StrFormat("request %s: stop[%d] is empty; stop strings "
                                                "must not be empty",
                                                id, i));
    }
  }
  if (spec.max_tokens < 0) {
    return FieldError("max_tokens", absl::StrFormat("request %s: max_tokens = %d; must be >= 0",
                                                    id, spec.max_tokens));
  }
  std::string field;
  if (absl::Status s = ValidateSamplingParams(spec.sampling, &field); !s.ok()) {
    return FieldError(field, absl::StrFormat("request %s: %s", id, s.message()));
  }
  if (spec.top_logprobs < 0 || spec.top_logprobs > kMaxTopLogprobs) {
    return FieldError("top_logprobs",
                      absl::StrFormat("request %s: top_logprobs = %d; must be in [0, %d]", id,
                                      spec.top_logprobs, kMaxTopLogprobs));
  }
  const int64_t needed = static_cast<int64_t>(spec.prompt.size()) + spec.max_tokens;
  if (needed > limits.max_context) {
    return FieldError(
        "max_tokens",
        absl::StrFormat("request %s: prompt (%d tokens) + max_tokens (%d) = %d exceeds the "
                        "context limit of %d (--max-context)",
                        id, spec.prompt.size(), spec.max_tokens, needed, limits.max_context));
  }
  return absl::OkStatus();
}

}  // namespace tessera
