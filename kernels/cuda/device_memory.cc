#include "kernels/cuda/device_memory.h"

#include "kernels/cuda/cuda_status.h"

namespace tessera::kernels::cuda {

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes > 0) {
    CUDA_RETURN_IF_ERROR(cudaMalloc(&b.data_, bytes));
    b.bytes_ = bytes;
  }
  return b;
}

absl::Status DeviceBuffer::Reserve(size_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Reset();
  CUDA_RETURN_IF_ERROR(cudaMalloc(&data_, bytes));
  bytes_ = bytes;
  return absl::OkStatus();
}

void DeviceBuffer::Reset() {
  // A free can only fail if the context is already gone; nothing to do then.
  if (data_ != nullptr) static_cast<void>(cudaFree(data_));
  data_ = nullptr;
  bytes_ = 0;
}

absl::Status PinnedBuffer::Reserve(size_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Reset();
  CUDA_RETURN_IF_ERROR(cudaMallocHost(&data_, bytes));
  bytes_ = bytes;
  return absl::OkStatus();
}

void PinnedBuffer::Reset() {
  if (data_ != nullptr) static_cast<void>(cudaFreeHost(data_));
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace tessera::kernels::cuda
