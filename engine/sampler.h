// Token sampling with a counter-based random number generator.
//
// The random draw for a request's i-th generated token is a pure function of
// (seed, i): no generator state is carried between steps. So a sequence can
// be re-batched, preempted and recomputed, or moved to another replica, and it
// still samples exactly the same tokens.
//
// The pipeline, applied to one row of logits:
//   repetition penalty (over the last `repeat_last_n` tokens, llama.cpp's
//   rule: positive logits divided, negative multiplied) -> greedy if
//   temperature == 0 -> top-k -> temperature -> softmax -> top-p -> min-p ->
//   draw with the counter's uniform number.
// Candidates are ordered by (logit descending, id ascending), so ties resolve
// the same way everywhere.
//
// Top-N log-probabilities (OpenAI's `top_logprobs`) describe the same
// unmodified distribution as SampledToken::logprob: log-softmax of the raw
// logits, before the repetition penalty, temperature and the cuts. They are
// found in the one pass that computes the log-normalizer, keeping the best N
// seen so far, so asking for them costs about what asking for the logprob
// does, never a sort of the vocabulary.
//
// Thread-safety: pure functions.
#ifndef TESSERA_ENGINE_SAMPLER_H_
#define TESSERA_ENGINE_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/sampling_params.h"

namespace tessera {

// A uniform number in [0, 1) determined by (seed, counter) alone.
double CounterUniform(uint64_t seed, uint64_t counter);

// The ids the repetition penalty applies to: the distinct in-range ids among
// the last params.repeat_last_n of `recent`, in order of their last-window
// appearance; empty when the penalty is off. The CPU and the GPU sampler
// both use this, so they penalise exactly the same tokens.
std::vector<int32_t> PenalisedIds(const SamplingParams& params,
                                  absl::Span<const int32_t> recent, int32_t vocab);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t id = 0;
  // log-probability of `id` under the model's unmodified distribution; NaN
  // unless the caller asked for it.
  float logprob = 0.0f;
  // The min(top_logprobs, vocab) most likely tokens under that distribution,
  // by logprob descending then id ascending; empty unless asked for. When
  // `id` is among them its entry's logprob equals `logprob` exactly.
  std::vector<TokenLogprob> top_logprobs;
};

// The min(n, logits.size()) most likely tokens of log-softmax(logits), by
// logprob descending then id ascending (the sampler's tie rule); empty for
// n <= 0. Callers bound n (kMaxTopLogprobs); the cost is one pass over the
// vocabulary plus O(vocab log n) comparisons in the worst case.
std::vector<TokenLogprob> TopLogprobs(absl::Span<const float> logits, int n);

// Samples from `logits` (the full vocabulary). `recent` holds the sequence's
// tokens so far (prompt and generated) for the repetition penalty; `counter`
// is the index of the token being generated within its request. The logprob
// costs a log-sum-exp over the whole vocabulary (about as much as the rest of
// greedy sampling), so it is computed only when `want_logprob` is set;
// `top_logprobs` > 0 fills SampledToken::top_logprobs from the same pass
// (and implies the logprob). The sampled id never depends on either.
SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, uint64_t counter,
                    bool want_logprob = true, int top_logprobs = 0);

}  // namespace tessera

#endif  // TESSERA_ENGINE_SAMPLER_H_
