// Rotary embedding, llama.cpp's "normal" (adjacent pairs) and "neox"
// (rotate-half) modes.
//
// CPU reference (kernels/cpu/rope.cc), per token:
//   theta = float(pos); for pair i: angle_i = theta / ff_i; theta *= s
//   with s = powf(base, -2/rot_dim), then per head and pair i with members
//   a = (neox ? i : 2i), b = a + (neox ? rot_dim/2 : 1):
//   x_a' = x_a*cos - x_b*sin;  x_b' = x_a*sin + x_b*cos
// s is computed on the host with the same std::pow as the CPU, and each pair's
// theta repeats the same float multiplications in the same order, so the
// angles are bitwise the CPU's; only CUDA's sinf/cosf (within 2 ulp) differ.
#include <cmath>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/rope.cuh"

namespace tessera::kernels::cuda {
namespace {

// One block per token: the pairs' cos/sin go to shared memory once, then the
// block rotates every head of the token.
__global__ void RopeKernel(float* x, const int32_t* __restrict__ positions, int heads,
                           int head_dim, int pairs, float theta_scale,
                           const float* __restrict__ freq_factors, bool neox) {
  extern __shared__ float cos_sin[];  // [pairs][2]
  const int64_t t = blockIdx.x;
  RopeCosSin(positions[t], pairs, theta_scale, freq_factors, cos_sin);
  __syncthreads();
  const int stride = neox ? pairs : 1;
  for (int idx = threadIdx.x; idx < heads * pairs; idx += blockDim.x) {
    const int h = idx / pairs;
    const int i = idx % pairs;
    float* v = x + (t * heads + h) * static_cast<int64_t>(head_dim);
    const int a = neox ? i : 2 * i;
    const float c = cos_sin[2 * i];
    const float s = cos_sin[2 * i + 1];
    const float x0 = v[a];
    const float x1 = v[a + stride];
    v[a] = x0 * c - x1 * s;
    v[a + stride] = x0 * s + x1 * c;
  }
}

}  // namespace

absl::Status Rope(float* x, const int32_t* positions, int64_t tokens, int heads,
                  const RopeParams& params, cudaStream_t stream) {
  const int pairs = params.rot_dim / 2;
  if (pairs <= 0 || tokens <= 0 || heads <= 0) return absl::OkStatus();
  if (params.rot_dim > params.head_dim) {
    return absl::InvalidArgumentError("CUDA Rope: rot_dim exceeds head_dim");
  }
  const float theta_scale =
      std::pow(params.freq_base, -2.0f / static_cast<float>(params.rot_dim));
  constexpr int kThreads = 256;
  const size_t smem = sizeof(float) * 2 * static_cast<size_t>(pairs);
  RopeKernel<<<static_cast<unsigned>(tokens), kThreads, smem, stream>>>(
      x, positions, heads, params.head_dim, pairs, theta_scale, params.freq_factors,
      params.neox);
  CUDA_RETURN_IF_LAUNCH_ERROR("RopeKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
