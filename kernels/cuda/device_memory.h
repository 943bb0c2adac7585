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

// Where a CudaBuffer's memory lives.
enum class MemoryKind {
  kDevice,      // cudaMalloc / cudaFree
  kPinnedHost,  // cudaMallocHost / cudaFreeHost
};

template <MemoryKind kKind>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  ~CudaBuffer() { Reset(); }
  CudaBuffer(CudaBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;

  // `bytes` may be 0 (an empty buffer, data() == nullptr).
  static absl::StatusOr<CudaBuffer> Allocate(size_t bytes) {
    CudaBuffer b;
    absl::Status s = b.Reserve(bytes);
    if (!s.ok()) return s;
    return b;
  }

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

using DeviceBuffer = CudaBuffer<MemoryKind::kDevice>;
using PinnedBuffer = CudaBuffer<MemoryKind::kPinnedHost>;

// Defined in device_memory.cc for the two kinds above.
extern template class CudaBuffer<MemoryKind::kDevice>;
extern template class CudaBuffer<MemoryKind::kPinnedHost>;

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_DEVICE_MEMORY_H_
