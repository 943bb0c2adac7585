// The rotary angles of one token, shared by RopeKernel (rope.cu) and the
// fused QkvRopeKvWrite (fused.cu). Device code only.
//
// As the CPU (kernels/cpu/rope.cc): theta = float(pos), multiplied by
// theta_scale once per pair index (the same float recurrence, so the angles
// are bitwise the CPU's), divided by the pair's frequency factor.
#ifndef TESSERA_KERNELS_CUDA_ROPE_CUH_
#define TESSERA_KERNELS_CUDA_ROPE_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::kernels::cuda {

// cos_sin[2 i] and cos_sin[2 i + 1] = cos and sin of pair i's angle at `pos`,
// for i < pairs, computed by the block's threads; the caller synchronises
// before reading them.
__device__ __forceinline__ void RopeCosSin(int32_t pos, int pairs, float theta_scale,
                                           const float* __restrict__ freq_factors,
                                           float* cos_sin) {
  for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
    float theta = static_cast<float>(pos);
    for (int j = 0; j < i; ++j) theta *= theta_scale;
    const float ff = freq_factors != nullptr ? freq_factors[i] : 1.0f;
    const float angle = theta / ff;
    cos_sin[2 * i] = cosf(angle);
    cos_sin[2 * i + 1] = sinf(angle);
  }
}

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_ROPE_CUH_
