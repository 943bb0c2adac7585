// Element-wise ops and the single-row softmax.
//
// CPU references (kernels/cpu/activation.cc):
//   SwiGlu: out_i = (g_i / (1 + expf(-g_i))) * up_i
//   Add:    y_i += x_i
//   SumParts: y_i = ((p_0,i + p_1,i) + p_2,i) + ... in part order (the CPU
//            tensor-parallel group's rank-order all-reduce,
//            engine/cpu_collective.h)
//   AddBias: x[t][i] += b[i] for every token (engine/model_runner.cc's AddBias,
//            kernels::Add of the bias into each row; float addition commutes,
//            so the result is bitwise the CPU's)
//   Softmax: m = max x; e_i = expf(x_i - m); sum = sum_i double(e_i);
//            x_i = e_i * float(1 / sum)
// SwiGlu and Add use the same float operations (no FMA contraction); only
// expf may differ by an ulp. Softmax sums the same values in a tree order.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

__global__ void SwiGluKernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    out[i] = (g / (1.0f + expf(-g))) * up[i];
  }
}

__global__ void AddKernel(const float* __restrict__ x, int64_t n, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] += x[i];
  }
}

__global__ void SumPartsKernel(const float* __restrict__ parts, int count, int64_t n,
                               float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    float sum = parts[i];
    for (int p = 1; p < count; ++p) sum += parts[p * n + i];
    y[i] = sum;
  }
}

// Grid-stride over all tokens * dim elements; the bias row stays in L1/L2.
__global__ void AddBiasKernel(const float* __restrict__ bias, int64_t n, int64_t dim,
                              float* __restrict__ x) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    x[i] += bias[i % dim];
  }
}

// One block for the whole row: three passes (max, exp and sum, scale).
__global__ void SoftmaxKernel(float* x, int64_t n) {
  __shared__ float fscratch[kWarpSize];
  __shared__ double dscratch[kWarpSize];
  float max = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) max = fmaxf(max, x[i]);
  max = BlockMax(max, fscratch);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(x[i] - max);
    x[i] = e;
    sum += e;
  }
  sum = BlockSum(sum, dscratch);
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[i] *= inv;
}

}  // namespace

absl::Status SwiGlu(const float* gate, const float* up, int64_t n, float* out,
                    cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  SwiGluKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(gate, up, n, out);
  CUDA_RETURN_IF_LAUNCH_ERROR("SwiGluKernel");
  return absl::OkStatus();
}

absl::Status Add(const float* x, int64_t n, float* y, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  AddKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(x, n, y);
  CUDA_RETURN_IF_LAUNCH_ERROR("AddKernel");
  return absl::OkStatus();
}

absl::Status SumParts(const float* parts, int count, int64_t n, float* y,
                      cudaStream_t stream) {
  if (n <= 0 || count <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  SumPartsKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(parts, count, n, y);
  CUDA_RETURN_IF_LAUNCH_ERROR("SumPartsKernel");
  return absl::OkStatus();
}

absl::Status AddBias(const float* bias, int64_t tokens, int64_t dim, float* x,
                     cudaStream_t stream) {
  if (tokens <= 0 || dim <= 0) return absl::OkStatus();
  const int64_t n = tokens * dim;
  constexpr int kThreads = 256;
  AddBiasKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(bias, n, dim, x);
  CUDA_RETURN_IF_LAUNCH_ERROR("AddBiasKernel");
  return absl::OkStatus();
}

absl::Status Softmax(float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  SoftmaxKernel<<<1, 1024, 0, stream>>>(x, n);
  CUDA_RETURN_IF_LAUNCH_ERROR("SoftmaxKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
