#include "engine/cuda/cuda_sampler.h"

#include <algorithm>
#include <vector>


namespace tessera {

absl::StatusOr<SampledToken> SampleOnDevice(kernels::cuda::SamplerWorkspace& workspace,
                                            const float* logits, int32_t vocab,
                                            const SamplingParams& params,
                                            absl::Span<const int32_t> recent, uint64_t counter,
                                            bool want_logprob, cudaStream_t stream) {
  const std::vector<int32_t> penalised = PenalisedIds(params, recent, vocab);
  kernels::cuda::SampleOptions o;
  o.temperature = params.temperature;
  o.top_k = params.top_k;
  o.top_p = params.top_p;
  o.min_p = params.min_p;
  o.repetition_penalty = params.repetition_penalty;
  o.uniform = params.temperature == 0.0f ? 0.0 : CounterUniform(params.seed, counter);
  o.want_logprob = want_logprob;
  auto r = kernels::cuda::Sample(workspace, logits, vocab, o, penalised, stream);
  if (!r.ok()) return r.status();
  SampledToken t;
  t.id = r->id;
  t.logprob = r->logprob;
  return t;
}

}  // namespace tessera
