// Fused RMSNorm: one block per token reads the row once for the sum of
// squares and once more (from L1/L2) to scale it.
//
// CPU reference (kernels/cpu/norm.cc):
//   sum = sum_i double(float(x_i * x_i))          (double accumulation)
//   mean = float(sum / dim); scale = 1.0f / sqrtf(mean + eps)
//   y_i = (x_i * scale) * w_i                     (two float roundings)
// The float squares summed in double are exact for any realistic dim and
// range, so the parallel order gives the same sum and, with IEEE sqrtf and
// division (nvcc's defaults) and no FMA contraction, bitwise the CPU result.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

__global__ void RmsNormKernel(const float* x, const float* __restrict__ weight, int64_t dim,
                              float eps, float* y) {
  __shared__ double scratch[kWarpSize];
  const float* xt = x + blockIdx.x * dim;
  float* yt = y + blockIdx.x * dim;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float sq = xt[i] * xt[i];
    sum += static_cast<double>(sq);
  }
  sum = BlockSum(sum, scratch);
  const float mean = static_cast<float>(sum / static_cast<double>(dim));
  const float scale = 1.0f / sqrtf(mean + eps);
  // x may alias y: each element is read and written by the same thread, and
  // every read of the sum loop happened before BlockSum's barriers.
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yt[i] = (xt[i] * scale) * weight[i];
}

}  // namespace

absl::Status RmsNorm(const float* x, const float* weight, int64_t tokens, int64_t dim,
                     float eps, float* y, cudaStream_t stream) {
  if (tokens <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  RmsNormKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(x, weight, dim, eps, y);
  CUDA_RETURN_IF_LAUNCH_ERROR("RmsNormKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
