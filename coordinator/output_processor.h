// Turns one request's generated token ids into what its client sees: text
// (detokenized incrementally, never a broken UTF-8 character), stop strings
// (text is released only once it cannot be the start of one; a match ends
// the request there), and the printable pieces of the top-logprob
// alternatives.
//
// It runs on the consumer's thread, when the front end takes events from the
// request's stream (request_stream.h), so none of this work happens under
// the scheduler's lock. The scheduler handles only what decides scheduling:
// end-of-generation and stop ids, max_tokens, errors.
//
// Thread-safety: not synchronised; one per request, used by its consumer.
#ifndef TESSERA_COORDINATOR_OUTPUT_PROCESSOR_H_
#define TESSERA_COORDINATOR_OUTPUT_PROCESSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/stop_matcher.h"

namespace tessera {

// One entry of a generated position's top-N list.
struct TopLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
  // The token's raw bytes (possibly part of a UTF-8 character); control
  // tokens are rendered ("<|im_end|>") so that a list never shows blanks.
  std::string piece;
};

// What a front end receives about a request.
struct RequestEvent {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  // When the request asked for top_logprobs: one list per token id, in order.
  std::vector<std::vector<TopLogprob>> top_logprobs;
  std::string text;
  bool final = false;
  absl::Status status;          // non-OK: the request failed
  std::string finish_reason;    // "length" or "stop" on the final event
  int64_t prompt_tokens = 0;    // on the final event
  int64_t completion_tokens = 0;
};

// What the scheduler produces: a sampled token, or the end.
struct GeneratedToken {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (id, logprob), when asked for
};
struct GenerationEnd {
  absl::Status status;
  std::string finish_reason;  // "length" or "stop" when OK
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// The final event for `end`, with no text.
RequestEvent FinalEvent(const GenerationEnd& end);

class OutputProcessor {
 public:
  // `tokenizer` must outlive the processor. `logprobs`: report each token's
  // log-probability.
  OutputProcessor(const Tokenizer* tokenizer, std::vector<std::string> stops, bool logprobs,
                  int64_t prompt_tokens);

  // The events for one token: its own, and a final one when it completed a
  // stop string (then `*stopped` is set and later input is ignored).
  void Token(const GeneratedToken& token, std::vector<RequestEvent>* out, bool* stopped);
  // The final event for the end of generation (nothing if a stop string
  // already ended the request).
  void End(const GenerationEnd& end, std::vector<RequestEvent>* out);

  bool done() const { return done_; }

 private:
  const Tokenizer* tokenizer_;
  IncrementalDetokenizer detok_;
  StopMatcher stops_;
  const bool logprobs_;
  const int64_t prompt_tokens_;
  int64_t tokens_ = 0;
  bool done_ = false;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_OUTPUT_PROCESSOR_H_
