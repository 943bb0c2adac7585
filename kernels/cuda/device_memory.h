// Owning handles for CUDA memory: DeviceBuffer (cudaMalloc) and PinnedBuffer
// (page-locked host memory, for asynchronous copies).
//
// Both are move-only and free their memory in the destructor; allocation goes
// through the static Allocate, which returns a Status (RESOURCE_EXHAUSTED when
// the device is full) rather than throwing. Plain device allocations are used
// on purpose, never managed memory (see docs/gpu.md).
//
// Thread-safety: a buffer is a plain owner; synchronising the work that reads
// and writes it is the caller's business (streams).
#ifndef TESSERA_KERNELS_CUDA_DEVICE_MEMORY_H_
#define TESSERA_KERNELS_CUDA_DEVICE_MEMORY_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"

namespace tessera::kernels::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // `bytes` may be 0 (an empty buffer, data() == nullptr).
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes);

  // Grows (never shrinks) to at least `bytes`, discarding the contents.
  absl::Status Reserve(size_t bytes);

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void Reset();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Reset(); }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // Grows (never shrinks) to at least `bytes`, discarding the contents.
  absl::Status Reserve(size_t bytes);

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void Reset();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_DEVICE_MEMORY_H_
