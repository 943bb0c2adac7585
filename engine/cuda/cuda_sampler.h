// engine/sampler.h's Sample on the GPU: adapts SamplingParams and the
// request's recent tokens to kernels::cuda::Sample. The uniform number is
// CounterUniform(seed, counter) computed here on the host by the CPU's own
// function, so the random draw is the CPU's bit for bit (see
// kernels/cuda/sampling.h for where the chosen token can still differ).
//
// Thread-safety: as the workspace (one thread at a time).
#ifndef TESSERA_ENGINE_CUDA_CUDA_SAMPLER_H_
#define TESSERA_ENGINE_CUDA_CUDA_SAMPLER_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/sampling_params.h"
#include "engine/sampler.h"
#include "kernels/cuda/sampling.h"

namespace tessera {

// Samples from the device row logits[0..vocab), as Sample() does on the host.
absl::StatusOr<SampledToken> SampleOnDevice(kernels::cuda::SamplerWorkspace& workspace,
                                            const float* logits, int32_t vocab,
                                            const SamplingParams& params,
                                            absl::Span<const int32_t> recent, uint64_t counter,
                                            bool want_logprob, cudaStream_t stream);

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_CUDA_SAMPLER_H_
