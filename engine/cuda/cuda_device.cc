#include "engine/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace tessera {

absl::Status CudaDeviceAvailable(int index) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // clear it for later calls
    return absl::FailedPreconditionError(absl::StrFormat(
        "--device cuda:%d: no usable CUDA device on this machine (cudaGetDeviceCount: %s)", index,
        cudaGetErrorString(e)));
  }
  if (index >= count) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--device cuda:%d: this machine has %d CUDA device(s)", index, count));
  }
  return absl::OkStatus();
}

namespace {

absl::Status CudaError(const char* call, cudaError_t e) {
  static_cast<void>(cudaGetLastError());
  return absl::InternalError(absl::StrFormat("%s: %s", call, cudaGetErrorString(e)));
}

}  // namespace

absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice(int index) {
  if (absl::Status s = CudaDeviceAvailable(index); !s.ok()) return s;
  if (cudaError_t e = cudaSetDevice(index); e != cudaSuccess) return CudaError("cudaSetDevice", e);
  CudaDeviceInfo info;
  cudaDeviceProp prop;
  if (cudaError_t e = cudaGetDeviceProperties(&prop, index); e != cudaSuccess) {
    return CudaError("cudaGetDeviceProperties", e);
  }
  info.name = prop.name;
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes); e != cudaSuccess) {
    return CudaError("cudaMemGetInfo", e);
  }
  info.free_bytes = free_bytes;
  info.total_bytes = total_bytes;
  // Two buffers of 256 MiB (less on a small or busy device): large enough
  // that the copy runs at DRAM speed, not from L2.
  const size_t bytes = std::min<size_t>(size_t{256} << 20, free_bytes / 8) / 256 * 256;
  if (bytes == 0) return info;
  void* a = nullptr;
  void* b = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaError_t e = cudaMalloc(&a, bytes);
  if (e == cudaSuccess) e = cudaMalloc(&b, bytes);
  if (e == cudaSuccess) e = cudaEventCreate(&start);
  if (e == cudaSuccess) e = cudaEventCreate(&stop);
  if (e == cudaSuccess) e = cudaMemset(a, 1, bytes);
  float best_ms = 0;
  for (int i = 0; i < 5 && e == cudaSuccess; ++i) {
    e = cudaEventRecord(start);
    if (e == cudaSuccess) e = cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    if (e == cudaSuccess) e = cudaEventRecord(stop);
    if (e == cudaSuccess) e = cudaEventSynchronize(stop);
    float ms = 0;
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, start, stop);
    if (e == cudaSuccess && i > 0 && (best_ms == 0 || ms < best_ms)) best_ms = ms;  // 0: warm-up
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  if (a != nullptr) cudaFree(a);
  if (b != nullptr) cudaFree(b);
  if (e != cudaSuccess) return CudaError("measuring copy bandwidth", e);
  if (best_ms > 0) info.copy_bandwidth_bytes_per_s = 2.0 * bytes / (best_ms / 1e3);
  return info;
}

}  // namespace tessera
