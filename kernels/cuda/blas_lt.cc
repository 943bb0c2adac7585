#include "kernels/cuda/blas_lt.h"

#include <library_types.h>

#include <vector>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_status.h"

namespace tessera::kernels::cuda {
namespace {

// Largest power of two (up to 256) dividing the address: cuBLASLt's
// heuristic assumes 256-byte alignment unless told otherwise, and an
// algorithm picked for aligned pointers may refuse less aligned ones.
int Alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

absl::StatusOr<cudaDataType_t> CudaType(DType type) {
  switch (type) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    default:
      return absl::UnimplementedError(
          absl::StrFormat("cuBLASLt MatMul: weights of type %s are not supported on the GPU "
                          "(only F32, F16 and BF16)",
                          DTypeName(type)));
  }
}

}  // namespace

// The descriptors of one GEMM shape, destroyed with the plan.
struct BlasLt::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, y = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  // The heuristic's candidates, best first; `chosen` is the first that ran.
  std::vector<cublasLtMatmulAlgo_t> algos;
  size_t chosen = 0;
  ~Plan() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
    if (y != nullptr) cublasLtMatrixLayoutDestroy(y);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};

absl::StatusOr<std::unique_ptr<BlasLt>> BlasLt::Create(size_t workspace_bytes) {
  std::unique_ptr<BlasLt> blas(new BlasLt());
  CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&blas->handle_));
  auto ws = DeviceBuffer::Allocate(workspace_bytes);
  if (!ws.ok()) return ws.status();
  blas->workspace_ = *std::move(ws);
  return blas;
}

BlasLt::~BlasLt() {
  plans_.clear();
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

absl::StatusOr<BlasLt::Plan*> BlasLt::GetPlan(DType type, int64_t m, int64_t n, int64_t k,
                                              int64_t ld, int align_a, int align_b,
                                              int align_y) {
  const PlanKey key{static_cast<int>(type), m, n, k, ld, align_a, align_b, align_y};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();

  auto cuda_type = CudaType(type);
  if (!cuda_type.ok()) return cuda_type.status();
  auto plan = std::make_unique<Plan>();
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->a, *cuda_type, k, m, ld));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->b, *cuda_type, k, n, k));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->y, CUDA_R_32F, m, n, m));

  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&plan->pref));
  const size_t ws = workspace_.bytes();
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      plan->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t aa = align_a, ab = align_b, ay = align_y;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      plan->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof(aa)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      plan->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof(ab)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      plan->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ay, sizeof(ay)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      plan->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ay, sizeof(ay)));

  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b,
                                                        plan->y, plan->y, plan->pref, kCandidates,
                                                        results, &found));
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan->algos.push_back(results[i].algo);
  }
  if (plan->algos.empty()) {
    return absl::UnimplementedError(absl::StrFormat(
        "cuBLASLt has no algorithm for a %s GEMM with m=%d n=%d k=%d ld=%d (alignments A %d, B "
        "%d, Y %d bytes)",
        DTypeName(type), m, n, k, ld, align_a, align_b, align_y));
  }
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

absl::Status BlasLt::Gemm(DType type, const void* a, int64_t ld, const void* b, float* y,
                          int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  if (m <= 0 || n <= 0 || k <= 0) return absl::OkStatus();
  auto plan = GetPlan(type, m, n, k, ld, Alignment(a), Alignment(b), Alignment(y));
  if (!plan.ok()) return plan.status();
  Plan& p = **plan;
  const float alpha = 1.0f, beta = 0.0f;
  // The heuristic's first pick may still refuse this call (it ranks; it does
  // not promise): try the next candidates, and keep the one that runs.
  cublasStatus_t last = CUBLAS_STATUS_NOT_SUPPORTED;
  for (; p.chosen < p.algos.size(); ++p.chosen) {
    last = cublasLtMatmul(handle_, p.desc, &alpha, a, p.a, b, p.b, &beta, y, p.y, y, p.y,
                          &p.algos[p.chosen], workspace_.data(), workspace_.bytes(), stream);
    if (last == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
    // Only a refusal moves on to the next candidate; any other failure
    // (bad arguments, execution or allocation errors) is reported as is.
    if (last != CUBLAS_STATUS_NOT_SUPPORTED && last != CUBLAS_STATUS_ARCH_MISMATCH) {
      return absl::InternalError(absl::StrFormat(
          "cuBLASLt: a %s GEMM with m=%d n=%d k=%d ld=%d failed with candidate %d: status %d "
          "(%s)",
          DTypeName(type), m, n, k, ld, p.chosen, static_cast<int>(last),
          cublasLtGetStatusString(last)));
    }
  }
  return absl::UnimplementedError(absl::StrFormat(
      "cuBLASLt: none of the %d candidate algorithms ran a %s GEMM with m=%d n=%d k=%d ld=%d "
      "(last status %d, %s)",
      p.algos.size(), DTypeName(type), m, n, k, ld, static_cast<int>(last),
      cublasLtGetStatusString(last)));
}

}  // namespace tessera::kernels::cuda
