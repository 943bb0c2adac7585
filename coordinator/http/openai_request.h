// Turns the JSON body of an OpenAI completions or chat completions request
// into a RequestSpec: field types and ranges checked (INVALID_ARGUMENT naming
// the field), the prompt or chat messages tokenized. Chat message contents
// are encoded with special-token parsing off, so a client cannot inject
// control tokens; the chat template's own text keeps its special tokens.
//
// Sampling follows OpenAI's defaults (temperature 1, top_p 1, no top-k or
// min-p cut) rather than the engine's; `top_k`, `min_p`,
// `repetition_penalty` and `ignore_eos` are accepted as extensions, as vLLM
// does. Unknown fields are ignored. Chat's "top_logprobs" (0..20) needs
// "logprobs": true when above 0, as OpenAI's; completions' "logprobs" (0..20)
// is itself the count of alternatives.
//
// Thread-safety: pure functions of their arguments.
#ifndef TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_
#define TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/scheduler.h"

namespace tessera {

struct OpenAiRequest {
  RequestSpec spec;     // request_id left empty
  bool chat = false;
  bool stream = false;
  // completions: "logprobs" >= 0; chat: "logprobs": true. The count of
  // alternatives per token (completions' "logprobs" N, chat's
  // "top_logprobs") is spec.top_logprobs.
  bool logprobs = false;
};

// `param` receives the offending field's name on error ("" if none).
// Sampling fields the body leaves out take `model_defaults` where set, else
// OpenAI's documented defaults (temperature 1, top_p 1, no top_k/min_p).
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(
    const std::string& body, bool chat, const Tokenizer& tokenizer, int32_t default_max_tokens,
    std::string* param, const SamplingDefaults& model_defaults = SamplingDefaults());

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_
