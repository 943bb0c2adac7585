// Turns the JSON body of an OpenAI completions or chat completions request
// into an AdmissionRequest (admission_request.h), which admission then
// tokenizes, defaults and submits exactly as it does gRPC's. This file
// checks what only the HTTP API has: JSON types
// (a wrong type is INVALID_ARGUMENT naming the field), OpenAI-only fields
// (`n`, chat's `logprobs`/`top_logprobs` pairing, completions' `logprobs`
// count, `max_tokens` >= 1), the `model` name (NOT_FOUND for one this server
// does not serve), and the fields it refuses because honouring them is not
// implemented and ignoring them would change what the client asked for
// (`tools`, `response_format` other than text, `logit_bias`, ...; the README
// lists them). Value ranges shared with gRPC are left to
// ValidateRequestSpec, which the scheduler applies to both front ends.
//
// Chat messages go to admission as they are (roles and the template are
// checked there; contents are encoded with special-token parsing off, so a
// client cannot inject control tokens). Sampling fields the body leaves out
// take the model's values, then OpenAI's defaults (temperature 1, top_p 1,
// no top-k or min-p cut) rather than the engine's; `top_k`,
// `min_p`, `repetition_penalty` and `ignore_eos` are accepted as
// extensions, as vLLM does. Unknown fields are ignored and listed in
// OpenAiRequest::ignored_fields.
//
// No JSON exception ever leaves ParseOpenAiRequest: every access checks the
// type first, and one catch at the boundary turns anything missed into
// INVALID_ARGUMENT.
//
// Thread-safety: pure functions of their arguments.
#ifndef TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_
#define TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/admission_request.h"

namespace tessera {

struct OpenAiParseOptions {
  // max_tokens when the body has none.
  int32_t default_max_tokens = 16;
  // The names a request's "model" may use; the first is the canonical id.
  // Empty: any name is accepted.
  std::vector<std::string> model_ids;
};

struct OpenAiRequest {
  AdmissionRequest admission;  // request_id left empty: admission assigns one
  bool chat = false;
  bool stream = false;
  // completions: "logprobs" >= 0; chat: "logprobs": true. The count of
  // alternatives per token (completions' "logprobs" N, chat's
  // "top_logprobs") is spec.top_logprobs.
  bool logprobs = false;
  // The model name to answer with: the one the request used, else the
  // canonical id.
  std::string model;
  // Top-level fields this parser does not know, ignored.
  std::vector<std::string> ignored_fields;
};

// `param` receives the offending field's name on error ("" if none).
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const std::string& body, bool chat,
                                                 const OpenAiParseOptions& options,
                                                 std::string* param);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_OPENAI_REQUEST_H_
