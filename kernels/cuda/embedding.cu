// Token-embedding lookup: rows of a F32/F16/BF16 matrix widened to float32.
//
// CPU reference (kernels::DequantizeRow for plain float formats):
//   for i in [0, cols): out[i] = widen(W[row][i])
// Widening is exact, so the GPU result is bitwise the CPU's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"

namespace tessera::kernels::cuda {
namespace {

__device__ __forceinline__ float Widen(float v) { return v; }
__device__ __forceinline__ float Widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// One block per requested row; threads stride over the columns (coalesced).
template <typename T>
__global__ void GatherRowsKernel(const char* __restrict__ w, size_t row_bytes, int64_t cols,
                                 const int32_t* __restrict__ ids, float* __restrict__ out) {
  const int64_t i = blockIdx.x;
  const T* row = reinterpret_cast<const T*>(w + static_cast<size_t>(ids[i]) * row_bytes);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = Widen(row[c]);
}

}  // namespace

absl::Status DequantizeRows(const WeightMatrix& w, const int32_t* ids, int64_t n, float* out,
                            cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  const char* data = static_cast<const char*>(w.data);
  switch (w.dtype) {
    case DType::kF32:
      GatherRowsKernel<float><<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.cols, ids, out);
      break;
    case DType::kF16:
      GatherRowsKernel<__half><<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.cols, ids, out);
      break;
    case DType::kBF16:
      GatherRowsKernel<__nv_bfloat16>
          <<<n, kThreads, 0, stream>>>(data, w.row_bytes, w.cols, ids, out);
      break;
    default:
      return absl::UnimplementedError(absl::StrFormat(
          "CUDA DequantizeRows: rows of type %s are not supported (F32, F16, BF16 only)",
          DTypeName(w.dtype)));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("GatherRowsKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
