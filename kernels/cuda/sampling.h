// Token sampling on the device, mirroring engine/sampler.cc step for step:
//   repetition penalty -> greedy if temperature == 0 -> top-k -> temperature
//   -> softmax (double) -> top-p -> min-p -> draw with a given uniform number.
// Candidates are ordered by (logit descending, id ascending) as on the CPU:
// greedy is a block-wide arg-max with that order; the other paths sort the
// whole row with CUB's radix sort, which is stable, so equal logits keep
// ascending ids. -0.0 is canonicalised to +0.0 first so that the sort treats
// them as equal, as the CPU's comparison does.
//
// The uniform number is passed in (the engine computes CounterUniform(seed,
// counter) on the host with the CPU's own function), so the random draw is
// bit-identical by construction; the chosen token can differ from the CPU's
// only when u * total lands within rounding of a cumulative-probability
// boundary (the device sums probabilities in a different order, in double).
//
// kernels/ knows nothing of the engine, so the options are plain numbers;
// engine/cuda/cuda_sampler.h adapts SamplingParams to them.
//
// Thread-safety: a SamplerWorkspace is used by one thread at a time.
#ifndef TESSERA_KERNELS_CUDA_SAMPLING_H_
#define TESSERA_KERNELS_CUDA_SAMPLING_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/cuda/device_memory.h"

namespace tessera::kernels::cuda {

struct SampleOptions {
  float temperature = 0.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 = no limit
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  float repetition_penalty = 1.0f;
  // Uniform number in [0, 1) for the draw (unused when greedy).
  double uniform = 0.0;
  // Also compute log-softmax of the unpenalised logits at the chosen id.
  bool want_logprob = false;
};

struct SampleResult {
  int32_t id = 0;
  float logprob = 0.0f;  // NaN unless want_logprob
};

// Device scratch reused across calls (sized to the largest vocabulary seen).
class SamplerWorkspace {
 public:
  DeviceBuffer keys, sorted_keys, ids, sorted_ids, sort_temp, penalised, result;
  PinnedBuffer host_result;
};

// Samples one token from the device row logits[0..vocab). `penalised` (host)
// lists the distinct in-range token ids the repetition penalty applies to.
// Synchronises `stream` to return the id.
absl::StatusOr<SampleResult> Sample(SamplerWorkspace& ws, const float* logits, int32_t vocab,
                                    const SampleOptions& options,
                                    absl::Span<const int32_t> penalised, cudaStream_t stream);

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_SAMPLING_H_
