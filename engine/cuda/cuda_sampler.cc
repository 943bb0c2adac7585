#include "engine/cuda/cuda_sampler.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace tessera {

absl::StatusOr<SampledToken> SampleOnDevice(kernels::cuda::SamplerWorkspace& workspace,
                                            const float* logits, int32_t vocab,
                                            const SamplingParams& params,
                                            absl::Span<const int32_t> recent, uint64_t counter,
                                            bool want_logprob, cudaStream_t stream) {
  // The same ids engine/sampler.cc penalises: distinct, in range, among the
  // last repeat_last_n.
  std::vector<int32_t> penalised;
  if (params.repetition_penalty != 1.0f && params.repeat_last_n > 0) {
    absl::flat_hash_set<int32_t> seen;
    const size_t n = std::min<size_t>(recent.size(), params.repeat_last_n);
    for (size_t i = recent.size() - n; i < recent.size(); ++i) {
      const int32_t id = recent[i];
      if (id < 0 || id >= vocab || !seen.insert(id).second) continue;
      penalised.push_back(id);
    }
  }
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
  return SampledToken{r->id, r->logprob};
}

}  // namespace tessera
