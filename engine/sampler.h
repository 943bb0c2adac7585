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
// Thread-safety: pure functions.
#ifndef TESSERA_ENGINE_SAMPLER_H_
#define TESSERA_ENGINE_SAMPLER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/sampling_params.h"

namespace tessera {

// A uniform number in [0, 1) determined by (seed, counter) alone.
double CounterUniform(uint64_t seed, uint64_t counter);

struct SampledToken {
  int32_t id = 0;
  // log-probability of `id` under the model's unmodified distribution; NaN
  // unless the caller asked for it.
  float logprob = 0.0f;
};

// Samples from `logits` (the full vocabulary). `recent` holds the sequence's
// tokens so far (prompt and generated) for the repetition penalty; `counter`
// is the index of the token being generated within its request. The logprob
// costs a log-sum-exp over the whole vocabulary (about as much as the rest of
// greedy sampling), so it is computed only when `want_logprob` is set.
SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, uint64_t counter,
                    bool want_logprob = true);

}  // namespace tessera

#endif  // TESSERA_ENGINE_SAMPLER_H_
