// What a client asks the coordinator to generate, as plain C++ values, and the
// one function that decides whether a request is valid.
//
// Both front ends (gRPC Generate and the OpenAI HTTP API) convert their wire
// shape into a RequestSpec and leave every range check to ValidateRequestSpec,
// so the same values are refused the same way whichever API carries them. A
// refusal is INVALID_ARGUMENT whose message names the field; the field's name
// is also attached as a payload (FieldOf) so that the HTTP API can fill
// OpenAI's `param` without parsing messages.
//
// No gRPC here: the HTTP parser and its fuzz target build without it.
//
// Thread-safety: plain data and pure functions.
#ifndef TESSERA_COORDINATOR_REQUEST_SPEC_H_
#define TESSERA_COORDINATOR_REQUEST_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"

namespace tessera {

struct RequestSpec {
  std::string request_id;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool logprobs = false;
  // 0..kMaxTopLogprobs: the most likely tokens reported with each generated
  // token (RequestEvent::top_logprobs). > 0 implies `logprobs`.
  int32_t top_logprobs = 0;
  bool ignore_eos = false;
};

// The limits a request is checked against.
struct RequestLimits {
  int32_t vocab_size = 0;
  int64_t max_context = 0;  // prompt + max_tokens, --max-context
};

// INVALID_ARGUMENT naming the first offending field (prompt, max_tokens,
// temperature, top_k, top_p, min_p, repetition_penalty, repeat_last_n, stop,
// stop_token_ids, top_logprobs), with the request id in the message.
absl::Status ValidateRequestSpec(const RequestSpec& spec, const RequestLimits& limits);

// The prompt ids of a chat: roles checked (system, user, assistant; OpenAI's
// "developer" is its newer name for system), then rendered with the model's
// chat template. Contents are encoded as plain text, so a client cannot
// inject control tokens such as <|im_start|>. Errors name
// `field`[i].role (INVALID_ARGUMENT) or the template (FAILED_PRECONDITION
// when the model has none).
absl::StatusOr<std::vector<int32_t>> ChatPromptIds(const Tokenizer& tokenizer,
                                                   std::vector<ChatMessage> messages,
                                                   const std::string& field);

// An INVALID_ARGUMENT status carrying `field` as its payload.
absl::Status FieldError(const std::string& field, const std::string& message);
// The field a FieldError names; "" for any other status.
std::string FieldOf(const absl::Status& status);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_REQUEST_SPEC_H_
