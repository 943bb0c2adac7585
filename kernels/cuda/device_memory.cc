#include "kernels/cuda/device_memory.h"

#include "kernels/cuda/cuda_status.h"

namespace tessera::kernels::cuda {

template <MemoryKind kKind>
absl::Status CudaBuffer<kKind>::Reserve(size_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Reset();
  if constexpr (kKind == MemoryKind::kDevice) {
    CUDA_RETURN_IF_ERROR(cudaMalloc(&data_, bytes));
  } else {
    CUDA_RETURN_IF_ERROR(cudaMallocHost(&data_, bytes));
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

template <MemoryKind kKind>
void CudaBuffer<kKind>::Reset() {
  // A free can only fail if the context is already gone; nothing to do then.
  if (data_ != nullptr) {
    if constexpr (kKind == MemoryKind::kDevice) {
      static_cast<void>(cudaFree(data_));
    } else {
      static_cast<void>(cudaFreeHost(data_));
    }
  }
  data_ = nullptr;
  bytes_ = 0;
}

template class CudaBuffer<MemoryKind::kDevice>;
template class CudaBuffer<MemoryKind::kPinnedHost>;

}  // namespace tessera::kernels::cuda
