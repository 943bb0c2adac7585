// Token-embedding lookup: rows of a F32/F16/BF16 matrix widened to float32,
// or of a Q8_0/Q4_K matrix decoded (quant_blocks.cuh).
//
// CPU reference (kernels::DequantizeRow):
//   for i in [0, cols): out[i] = widen(W[row][i])   (or the block decoding)
// Widening is exact and the decoding takes the CPU's float steps, so the GPU
// result is bitwise the CPU's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/quant_blocks.cuh"

namespace tessera::kernels::cuda {
namespace {

__device__ __forceinline__ float Widen(float v) { return v; }
__device__ __forceinline__ float Widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// One block per requested row; threads stride over the columns (coalesced).
template <typename T>
__global__ void GatherRowsKernel(const char* __restrict__ w, size_t row_bytes, int64_t rows,
                                 int64_t cols, const int32_t* __restrict__ ids, int64_t id_base,
                                 float* __restrict__ out) {
  const int64_t i = blockIdx.x;
  const int64_t id = static_cast<int64_t>(ids[i]) - id_base;
  if (id < 0 || id >= rows) {  // another shard's row: this rank adds zeros
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = 0.0f;
    return;
  }
  const T* row = reinterpret_cast<const T*>(w + static_cast<size_t>(id) * row_bytes);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = Widen(row[c]);
}

// The same for a block format: threads stride over 8-column groups.
template <typename Decoder>
__global__ void GatherBlockRowsKernel(const char* __restrict__ w, size_t row_bytes, int64_t rows,
                                      int64_t cols, const int32_t* __restrict__ ids,
                                      int64_t id_base, float* __restrict__ out) {
  const int64_t i = blockIdx.x;
  const int64_t id = static_cast<int64_t>(ids[i]) - id_base;
  if (id < 0 || id >= rows) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = 0.0f;
    return;
  }
  const auto* row = reinterpret_cast<const uint8_t*>(w + static_cast<size_t>(id) * row_bytes);
  for (int64_t c = 8 * threadIdx.x; c < cols; c += 8 * blockDim.x) {
    float v[8];
    Decoder::Decode8(row, c, v);
#pragma unroll
    for (int j = 0; j < 8; ++j) out[i * cols + c + j] = v[j];
  }
}

}  // namespace

absl::Status DequantizeRows(const WeightMatrix& w, const int32_t* ids, int64_t n, float* out,
                            cudaStream_t stream, int64_t id_base) {
  if (n <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  const char* data = static_cast<const char*>(w.data);
  switch (w.dtype) {
    case DType::kF32:
      GatherRowsKernel<float>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.rows, w.cols, ids, id_base, out);
      break;
    case DType::kF16:
      GatherRowsKernel<__half>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.rows, w.cols, ids, id_base, out);
      break;
    case DType::kBF16:
      GatherRowsKernel<__nv_bfloat16>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.rows, w.cols, ids, id_base, out);
      break;
    case DType::kQ8_0:
      GatherBlockRowsKernel<Q8_0Decoder>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.rows, w.cols, ids, id_base, out);
      break;
    case DType::kQ4_K:
      GatherBlockRowsKernel<Q4_KDecoder>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.rows, w.cols, ids, id_base, out);
      break;
    default:
      return absl::UnimplementedError(absl::StrFormat(
          "CUDA DequantizeRows: rows of type %s are not supported (F32, F16, BF16, Q8_0, Q4_K)",
          DTypeName(w.dtype)));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("GatherRowsKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
