#include "kernels/cpu/vec_ops.h"

#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

float DotScalar(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void AxpyScalar(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void HalfToFloatScalar(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F16ToF32(x[i]);
}

}  // namespace

const VecOps& VecOpsFor(Isa isa) {
  static const VecOps kScalar{DotScalar, AxpyScalar, nullptr, HalfToFloatScalar, nullptr};
#if defined(TESSERA_KERNELS_X86)
  static const VecOps kAvx2{DotAvx2, AxpyAvx2, nullptr, HalfToFloatAvx2, nullptr};
  static const VecOps kAvx512{DotAvx512, AxpyAvx512, AttendAvx512, HalfToFloatAvx512,
                                 AttendTransposedAvx512};
  switch (isa) {
    case Isa::kAvx512:
      return kAvx512;
    case Isa::kAvx2:
      return kAvx2;
    case Isa::kScalar:
      break;
  }
#endif
  return kScalar;
}

}  // namespace tessera::kernels::internal
