// What a front end asks admission (admission.h) for: the prompt in the form
// the client sent it, the sampling fields it set, and the rest of a request,
// as plain values. The HTTP parser (http/openai_request.h) and gRPC Generate
// (inference_service.cc) fill one; neither tokenizes nor applies defaults.
//
// Thread-safety: plain data and pure functions.
#ifndef TESSERA_COORDINATOR_ADMISSION_REQUEST_H_
#define TESSERA_COORDINATOR_ADMISSION_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/access/caller.h"
#include "coordinator/request_spec.h"

namespace tessera {

inline constexpr size_t kMaxRequestIdBytes = 128;

// A prompt as the client sent it. `field` is the API's name for it in
// errors ("text", "prompt", "messages", "chat.messages").
struct TextPrompt {
  std::string text;  // encoded with BOS; special-token text is honoured
  std::string field;
};
struct IdsPrompt {
  std::vector<int32_t> ids;  // checked against the vocabulary by the scheduler
};
struct ChatPromptMessages {
  std::vector<ChatMessage> messages;  // rendered with the model's chat template
  std::string field;
};
using Prompt = std::variant<std::monostate, TextPrompt, IdsPrompt, ChatPromptMessages>;

struct AdmissionRequest {
  // Empty: Admit assigns "<id_prefix>-<n>-<4 hex digits>". At most
  // kMaxRequestIdBytes.
  std::string request_id;
  std::string id_prefix = "req";
  Prompt prompt;  // monostate: refused, naming `prompt_required`
  std::string prompt_required = "prompt: one of text, token_ids or chat is required";
  // The sampling fields the client set, and the API's defaults for those
  // neither the client nor the model sets.
  SamplingDefaults sampling;
  SamplingParams api_defaults;
  int32_t max_tokens = 128;  // the client's, or the API's default
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool logprobs = false;
  int32_t top_logprobs = 0;
  bool ignore_eos = false;
  // Appended to the admission log line (e.g. "; ignored unknown fields: x").
  std::string log_note;
  // Who asks (Admission::Authenticate): quotas and the audit log.
  Caller caller;
};

// The prompt as text for the audit log (--audit-prompts): the text, chat
// messages as "role: content" lines, or token ids separated by spaces.
std::string PromptForAudit(const Prompt& prompt);

// The prompt's ids (INVALID_ARGUMENT naming the field for an empty text or a
// bad chat role; FAILED_PRECONDITION when the model has no chat template).
absl::StatusOr<std::vector<int32_t>> PromptIds(const Tokenizer& tokenizer, const Prompt& prompt);

// What the client set, else the model's recommended values, else `api`.
SamplingParams ResolveSampling(const SamplingDefaults& given, const SamplingDefaults& model,
                               const SamplingParams& api);

// The scheduler's RequestSpec for `request` under the id `request_id`:
// prompt ids (errors as PromptIds, or naming `prompt_required` when there
// is no prompt) and resolved sampling. Range checks are the scheduler's
// (ValidateRequestSpec). Errors carry no request id; admission adds it.
absl::StatusOr<RequestSpec> ToRequestSpec(const Tokenizer& tokenizer, AdmissionRequest request,
                                          const SamplingDefaults& model_defaults,
                                          std::string request_id);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ADMISSION_REQUEST_H_
