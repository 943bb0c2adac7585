// MatMul on the GPU: Gemv (gemv.cu) for decode-sized steps, cuBLASLt for
// more tokens, with the activations rounded to the weight's 16-bit type
// first for F16/BF16 weights there. Q8_0 and Q4_K weights: Gemv decodes them
// in the kernel; for cuBLASLt they are dequantised to BF16 (rounded once
// from their exact values) into the handle's scratch, and the activations
// rounded to BF16, as for BF16 weights.
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
#include "kernels/cuda/quant_blocks.cuh"
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

bool Quantised(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_K; }

absl::Status CheckWeights(const WeightMatrix& w) {
  if (w.dtype != DType::kF32 && w.dtype != DType::kF16 && w.dtype != DType::kBF16 &&
      !Quantised(w.dtype)) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA MatMul: weights of type %s are not supported (F32, F16, BF16, Q8_0, Q4_K)",
        DTypeName(w.dtype)));
  }
  if (Quantised(w.dtype)) {
    if (w.cols % BlockSize(w.dtype) != 0 || w.row_bytes < RowBytes(w.dtype, w.cols)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "CUDA MatMul: %s rows of %d columns (row_bytes %d) are not whole blocks of %d",
          DTypeName(w.dtype), w.cols, w.row_bytes, BlockSize(w.dtype)));
    }
    return absl::OkStatus();
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

// One thread per 8 columns of a row: the exact values (Decoder), rounded to
// BF16.
template <typename Decoder>
__global__ void DequantizeToBf16Kernel(const uint8_t* __restrict__ w, int64_t row_bytes,
                                       int64_t rows, int64_t cols, __nv_bfloat16* __restrict__ out) {
  const int64_t groups = cols / 8;
  for (int64_t g = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; g < rows * groups;
       g += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = g / groups;
    const int64_t c = g % groups * 8;
    float v[8];
    Decoder::Decode8(w + r * row_bytes, c, v);
#pragma unroll
    for (int j = 0; j < 8; ++j) out[r * cols + c + j] = __float2bfloat16_rn(v[j]);
  }
}

// The type cuBLASLt multiplies `w` in: BF16 for the quantised formats.
DType GemmType(DType t) { return Quantised(t) ? DType::kBF16 : t; }

absl::Status Gemm(BlasLt& blas, const WeightMatrix& w, const void* b, int64_t tokens, float* y,
                  cudaStream_t stream) {
  if (Quantised(w.dtype)) {
    RETURN_IF_ERROR(blas.dequantized_scratch().Reserve(static_cast<size_t>(w.rows * w.cols) * 2));
    auto* out = blas.dequantized_scratch().as<__nv_bfloat16>();
    const auto* bytes = static_cast<const uint8_t*>(w.data);
    const int64_t row_bytes = static_cast<int64_t>(w.row_bytes);
    constexpr int kThreads = 256;
    const unsigned grid = GridFor(w.rows * (w.cols / 8), kThreads);
    if (w.dtype == DType::kQ8_0) {
      DequantizeToBf16Kernel<Q8_0Decoder><<<grid, kThreads, 0, stream>>>(bytes, row_bytes, w.rows, w.cols, out);
    } else {
      DequantizeToBf16Kernel<Q4_KDecoder><<<grid, kThreads, 0, stream>>>(bytes, row_bytes, w.rows, w.cols, out);
    }
    CUDA_RETURN_IF_LAUNCH_ERROR("DequantizeToBf16Kernel");
    return blas.Gemm(DType::kBF16, out, w.cols, b, y, w.rows, tokens, w.cols, stream);
  }
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
  ASSIGN_OR_RETURN(const void* b, Activations(blas, GemmType(w.dtype), x, tokens * w.cols, stream));
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
  ASSIGN_OR_RETURN(const void* b,
                   Activations(blas, GemmType(ws[0].dtype), x, tokens * ws[0].cols, stream));
  for (size_t i = 0; i < count; ++i) RETURN_IF_ERROR(Gemm(blas, ws[i], b, tokens, ys[i], stream));
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
