#include "engine/cuda/cuda_device.h"

#include <cuda_runtime.h>

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

}  // namespace tessera
