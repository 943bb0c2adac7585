// A cuBLASLt handle with its workspace and a cache of matmul plans, for the
// weight-times-activations products of kernels/cuda (MatMul in
// cuda_kernels.h).
//
// Layout: a weight matrix is [rows][cols] row-major with rows `ld` elements
// apart (kernels::WeightMatrix). In cuBLAS's column-major terms that is the
// k x m matrix W^T (k = cols, m = rows, leading dimension ld), used with
// TRANSA = T; activations [tokens][cols] are the k x n matrix X (n = tokens)
// and the result [tokens][rows] is the m x n matrix Y = W X, all in place.
//
// Types: A and B share the weight's type (f32, f16 or bf16), the product and
// accumulation are float32 (CUBLAS_COMPUTE_32F, never TF32), and Y is f32.
//
// A plan (descriptors, layouts and the heuristic's best kCandidates
// algorithms) is built once per (type, m, n, k, ld, pointer alignments) and
// reused, so a decode step pays no heuristic query. A candidate that refuses
// the call (NOT_SUPPORTED) is skipped for the next, once, and the one that
// runs is kept; UNIMPLEMENTED names the shape when none does.
//
// Thread-safety: not thread-safe (the cache and the workspace); use one per
// stream, from one thread.
#ifndef TESSERA_KERNELS_CUDA_BLAS_LT_H_
#define TESSERA_KERNELS_CUDA_BLAS_LT_H_

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/dtype.h"

namespace tessera::kernels::cuda {

class BlasLt {
 public:
  // 32 MiB of workspace is what NVIDIA suggests for Hopper.
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;
  // Heuristic results kept per plan.
  static constexpr int kCandidates = 8;

  static absl::StatusOr<std::unique_ptr<BlasLt>> Create(
      size_t workspace_bytes = kDefaultWorkspaceBytes);
  ~BlasLt();
  BlasLt(const BlasLt&) = delete;
  BlasLt& operator=(const BlasLt&) = delete;

  // y[n][m] = W x as described above; `a` is W (ld elements per row), `b` is
  // X [n][k] in `type`, `y` float32. UNIMPLEMENTED for a type other than
  // F32/F16/BF16 or when cuBLASLt offers no algorithm.
  absl::Status Gemm(DType type, const void* a, int64_t ld, const void* b, float* y, int64_t m,
                    int64_t n, int64_t k, cudaStream_t stream);

  // Scratch for activations converted to a 16-bit type (owned here so that
  // MatMul allocates nothing per call once warmed up). MatMul grows it to
  // exactly what a call needs; a caller that captures CUDA graphs reserves
  // it for its largest step first, since a regrown scratch moves.
  DeviceBuffer& conversion_scratch() { return converted_; }
  const DeviceBuffer& conversion_scratch() const { return converted_; }
  // Scratch for a quantised matrix dequantised to BF16 for one prefill
  // MatMul (rows x cols x 2 bytes, grown to the largest such matrix): the
  // GPU keeps quantised weights as stored and widens them per call.
  DeviceBuffer& dequantized_scratch() { return dequantized_; }
  const DeviceBuffer& workspace() const { return workspace_; }

  cublasLtHandle_t handle() const { return handle_; }

 private:
  struct Plan;
  using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int, int, int>;

  BlasLt() = default;
  absl::StatusOr<Plan*> GetPlan(DType type, int64_t m, int64_t n, int64_t k, int64_t ld,
                                int align_a, int align_b, int align_y);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  DeviceBuffer converted_;
  DeviceBuffer dequantized_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_BLAS_LT_H_
