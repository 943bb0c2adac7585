// Portable row kernels: the fallback on CPUs without AVX2 and the baseline
// the SIMD paths are compared with. Each (token, row) is reduced strictly left
// to right.
#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

float WeightAt(DType dtype, const uint8_t* row, int64_t i) {
  switch (dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, row + 4 * i, sizeof(f));
      return f;
    }
    case DType::kF16:
      return F16ToF32(LoadU16(row + 2 * i));
    case DType::kBF16:
      return BF16ToF32(LoadU16(row + 2 * i));
    default:
      return 0.0f;
  }
}

float DotFloat(DType dtype, const uint8_t* row, const float* x, int64_t cols) {
  float acc = 0.0f;
  for (int64_t i = 0; i < cols; ++i) acc += WeightAt(dtype, row, i) * x[i];
  return acc;
}

float DotQ8_0(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 34 * b;
    const int8_t* wq = reinterpret_cast<const int8_t*>(blk + 2);
    const int8_t* xq = q + 32 * b;
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += static_cast<int32_t>(wq[j]) * xq[j];
    acc += (F16ToF32(LoadU16(blk)) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

float DotQ4_1(const uint8_t* row, const int8_t* q, const float* dx, const float* sx,
              int64_t nb) {
  float acc = 0.0f;
  float mins = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 20 * b;
    const uint8_t* qs = blk + 4;
    const int8_t* xq = q + 32 * b;
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += static_cast<int32_t>(qs[j] & 0x0F) * xq[j];
      isum += static_cast<int32_t>(qs[j] >> 4) * xq[j + 16];
    }
    acc += (F16ToF32(LoadU16(blk)) * dx[b]) * static_cast<float>(isum);
    mins += F16ToF32(LoadU16(blk + 2)) * sx[b];
  }
  return acc + mins;
}

}  // namespace

void MatMulRowsScalar(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  const WeightMatrix& w = *a.w;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / 32;
  const int64_t nbk = w.cols / kSuperBlock;
  for (int64_t o = row_begin; o < row_end; ++o) {
    const uint8_t* row = base + static_cast<size_t>(o) * w.row_bytes;
    for (int64_t t = 0; t < a.tokens; ++t) {
      float r;
      switch (w.dtype) {
        case DType::kQ8_0:
          r = DotQ8_0(row, a.qx.q + t * w.cols, a.qx.d + t * nb, nb);
          break;
        case DType::kQ4_1:
          r = DotQ4_1(row, a.qx.q + t * w.cols, a.qx.d + t * nb, a.qx.s + t * nb, nb);
          break;
        case DType::kQ4_0:
          r = DotQ4_0(row, a.qx.q + t * w.cols, a.qx.d + t * nb, nb);
          break;
        case DType::kQ5_0:
          r = DotQ5_0(row, a.qx.q + t * w.cols, a.qx.d + t * nb, nb);
          break;
        case DType::kQ5_1:
          r = DotQ5_1(row, a.qx.q + t * w.cols, a.qx.d + t * nb, a.qx.s + t * nb, nb);
          break;
        case DType::kIQ4_NL:
          r = DotIq4Nl(row, a.qx.q + t * w.cols, a.qx.d + t * nb, nb);
          break;
        case DType::kIQ4_XS:
          r = DotIq4Xs(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, nbk);
          break;
        case DType::kQ2_K:
          r = DotQ2_K(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, a.qx.bsums + t * nbk * 16,
                      nbk);
          break;
        case DType::kQ3_K:
          r = DotQ3_K(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, nbk);
          break;
        case DType::kQ4_K:
          r = DotQ4_K(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, a.qx.bsums + t * nbk * 16,
                      nbk);
          break;
        case DType::kQ5_K:
          r = DotQ5_K(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, a.qx.bsums + t * nbk * 16,
                      nbk);
          break;
        case DType::kQ6_K:
          r = DotQ6_K(row, a.qx.q + t * w.cols, a.qx.d + t * nbk, nbk);
          break;
        default:
          r = DotFloat(w.dtype, row, a.x + t * w.cols, w.cols);
          break;
      }
      a.y[t * w.rows + o] = r;
    }
  }
}

}  // namespace tessera::kernels::internal
