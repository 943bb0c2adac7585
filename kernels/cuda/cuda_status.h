// Turning CUDA runtime and cuBLAS(Lt) error codes into absl::Status.
//
// Every CUDA call in kernels/cuda and engine/cuda goes through one of the
// macros below, so a failure surfaces as a Status whose message names the
// call, the file and line, and the library's own error text; nothing in the
// CUDA path aborts. Kernel launches return no code, so each launch is followed
// by CUDA_RETURN_IF_LAUNCH_ERROR, which reads cudaGetLastError.
//
// Code mapping: out of memory -> RESOURCE_EXHAUSTED; no device or a driver
// too old -> FAILED_PRECONDITION; invalid values -> INVALID_ARGUMENT; a
// cuBLAS configuration it does not support -> UNIMPLEMENTED; the rest ->
// INTERNAL.
//
// Thread-safety: pure functions.
#ifndef TESSERA_KERNELS_CUDA_CUDA_STATUS_H_
#define TESSERA_KERNELS_CUDA_CUDA_STATUS_H_

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"

namespace tessera::kernels::cuda {

absl::Status CudaStatus(cudaError_t error, const char* call, const char* file, int line);
absl::Status CublasStatus(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace tessera::kernels::cuda

#define CUDA_RETURN_IF_ERROR(call)                                                     \
  do {                                                                                 \
    const cudaError_t tessera_cuda_error_ = (call);                                    \
    if (tessera_cuda_error_ != cudaSuccess) {                                          \
      return ::tessera::kernels::cuda::CudaStatus(tessera_cuda_error_, #call, __FILE__, \
                                                  __LINE__);                           \
    }                                                                                  \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(call)                                                       \
  do {                                                                                     \
    const cublasStatus_t tessera_cublas_status_ = (call);                                  \
    if (tessera_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                 \
      return ::tessera::kernels::cuda::CublasStatus(tessera_cublas_status_, #call, __FILE__, \
                                                    __LINE__);                             \
    }                                                                                      \
  } while (0)

// After a <<<...>>> launch: reports a bad configuration (grid, shared memory)
// or an earlier asynchronous fault, naming the kernel.
#define CUDA_RETURN_IF_LAUNCH_ERROR(kernel_name) \
  CUDA_RETURN_IF_ERROR((static_cast<void>(kernel_name), cudaGetLastError()))

#endif  // TESSERA_KERNELS_CUDA_CUDA_STATUS_H_
