// MatMul on the GPU: Gemv (gemv.cu) for decode-sized steps, cuBLASLt for
// more tokens, with the activations rounded to the weight's 16-bit type
// first for F16/BF16 weights there.
//
// CPU reference (kernels/cpu/matmul_scalar.cc, for plain float formats):
//   for t, o: y[t][o] = sum_i widen(W[o][i]) * x[t][i]   (float32)
// Here, above kGemvMaxTokens tokens: y = W * round16(x) with float32
// accumulation inside cuBLASLt (see blas_lt.h for the layout).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

// Round-to-nearest-even conversions, as kernels/dtype.cc's F32ToF16/F32ToBF16.
__device__ __forceinline__ void Store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void Store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__global__ void ConvertKernel(const float* __restrict__ x, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    Store(out + i, x[i]);
  }
}

template <typename T>
absl::Status Convert(const float* x, int64_t n, T* out, cudaStream_t stream) {
  constexpr int kThreads = 256;
  ConvertKernel<T><<<GridFor(n, kThreads), kThreads, 0, stream>>>(x, n, out);
  CUDA_RETURN_IF_LAUNCH_ERROR("ConvertKernel");
  return absl::OkStatus();
}

absl::Status CheckWeights(const WeightMatrix& w) {
  if (w.dtype != DType::kF32 && w.dtype != DType::kF16 && w.dtype != DType::kBF16) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA MatMul: weights of type %s are not supported (F32, F16, BF16 only)",
        DTypeName(w.dtype)));
  }
  const size_t elem = w.dtype == DType::kF32 ? 4 : 2;
  if (w.row_bytes % elem != 0 || w.row_bytes < elem * static_cast<size_t>(w.cols)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA MatMul: row_bytes %d does not fit %d %s columns", w.row_bytes, w.cols,
        DTypeName(w.dtype)));
  }
  return absl::OkStatus();
}

// The activations as cuBLASLt's B operand: x itself for F32 weights, else x
// rounded into the handle's conversion scratch.
absl::StatusOr<const void*> Activations(BlasLt& blas, DType type, const float* x, int64_t n,
                                        cudaStream_t stream) {
  if (type == DType::kF32) return static_cast<const void*>(x);
  RETURN_IF_ERROR(blas.conversion_scratch().Reserve(static_cast<size_t>(n) * 2));
  if (type == DType::kF16) {
    RETURN_IF_ERROR(Convert(x, n, blas.conversion_scratch().as<__half>(), stream));
  } else {
    RETURN_IF_ERROR(Convert(x, n, blas.conversion_scratch().as<__nv_bfloat16>(), stream));
  }
  return static_cast<const void*>(blas.conversion_scratch().data());
}

absl::Status Gemm(BlasLt& blas, const WeightMatrix& w, const void* b, int64_t tokens, float* y,
                  cudaStream_t stream) {
  const size_t elem = w.dtype == DType::kF32 ? 4 : 2;
  const int64_t ld = static_cast<int64_t>(w.row_bytes / elem);
  return blas.Gemm(w.dtype, w.data, ld, b, y, w.rows, tokens, w.cols, stream);
}

}  // namespace

absl::Status MatMul(BlasLt& blas, const WeightMatrix& w, const float* x, int64_t tokens,
                    float* y, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckWeights(w));
  if (tokens <= 0 || w.rows <= 0) return absl::OkStatus();
  if (tokens <= kGemvMaxTokens) return Gemv(&w, 1, x, tokens, &y, stream);
  ASSIGN_OR_RETURN(const void* b, Activations(blas, w.dtype, x, tokens * w.cols, stream));
  return Gemm(blas, w, b, tokens, y, stream);
}

absl::Status MatMulShared(BlasLt& blas, const WeightMatrix* ws, size_t count, const float* x,
                          int64_t tokens, float* const* ys, cudaStream_t stream) {
  if (count == 0 || tokens <= 0) return absl::OkStatus();
  bool shared = true;
  for (size_t i = 0; i < count; ++i) {
    RETURN_IF_ERROR(CheckWeights(ws[i]));
    shared &= ws[i].dtype == ws[0].dtype && ws[i].cols == ws[0].cols;
  }
  if (shared && tokens <= kGemvMaxTokens && count <= static_cast<size_t>(kGemvMaxMatrices)) {
    return Gemv(ws, count, x, tokens, ys, stream);
  }
  if (!shared) {
    for (size_t i = 0; i < count; ++i) RETURN_IF_ERROR(MatMul(blas, ws[i], x, tokens, ys[i], stream));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const void* b, Activations(blas, ws[0].dtype, x, tokens * ws[0].cols, stream));
  for (size_t i = 0; i < count; ++i) RETURN_IF_ERROR(Gemm(blas, ws[i], b, tokens, ys[i], stream));
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
