// Scalar decoding and dot products of IQ4_NL and IQ4_XS (layouts in
// kernels/dtype.h): 4-bit indices into llama.cpp's non-linear table
// kIq4Values, per block of 32 (IQ4_NL, scale d) or per sub-block of 32 in a
// 256-value super-block (IQ4_XS, scale d * (ls - 32)). llama.cpp's IQ4_XS
// files use IQ4_NL for rows whose width is not a multiple of 256.
//
// Dot products take one token's quantised activations: Q8_0 blocks for
// IQ4_NL, Q8_K super-blocks for IQ4_XS, as llama.cpp pairs them. Sums are
// exact in int32 (|isum| <= 256 * 63 * 127 * 127 for IQ4_XS), then:
//   IQ4_NL  acc += (d_w * d_x) * sum(value * x)           per block
//   IQ4_XS  acc += (d_w * d_x) * sum_j (ls_j - 32) * sum(value * x)
//                                                          per super-block
// The SIMD kernels (matmul_avx2.cc, matmul_avx512.cc) form the same sums.
#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

// Sub-block j's 6-bit scale minus 32 of an IQ4_XS super-block.
int Iq4XsScale(const uint8_t* blk, int j) {
  uint16_t scales_h;
  std::memcpy(&scales_h, blk + 2, sizeof(scales_h));
  const int ls = ((blk[4 + j / 2] >> (4 * (j % 2))) & 0x0F) | (((scales_h >> (2 * j)) & 3) << 4);
  return ls - 32;
}

// sum(value * x) over a 32-value group: 16 nibble bytes against 32 int8 x.
int32_t Iq4Dot32(const uint8_t* qs, const int8_t* xq) {
  int32_t sum = 0;
  for (int j = 0; j < 16; ++j) {
    sum += kIq4Values[qs[j] & 0x0F] * xq[j];
    sum += kIq4Values[qs[j] >> 4] * xq[j + 16];
  }
  return sum;
}

}  // namespace

void DequantizeRowIq4Nl(const uint8_t* row, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / 32; ++b) {
    const uint8_t* blk = row + 18 * b;
    const float d = F16At(blk);
    for (int j = 0; j < 16; ++j) {
      out[32 * b + j] = d * static_cast<float>(kIq4Values[blk[2 + j] & 0x0F]);
      out[32 * b + j + 16] = d * static_cast<float>(kIq4Values[blk[2 + j] >> 4]);
    }
  }
}

void DequantizeRowIq4Xs(const uint8_t* row, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
    const uint8_t* blk = row + 136 * b;
    const float d = F16At(blk);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * static_cast<float>(Iq4XsScale(blk, j));
      const uint8_t* qs = blk + 8 + 16 * j;
      float* o = out + kSuperBlock * b + 32 * j;
      for (int l = 0; l < 16; ++l) {
        o[l] = dl * static_cast<float>(kIq4Values[qs[l] & 0x0F]);
        o[l + 16] = dl * static_cast<float>(kIq4Values[qs[l] >> 4]);
      }
    }
  }
}

float DotIq4Nl(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 18 * b;
    acc += (F16At(blk) * dx[b]) * static_cast<float>(Iq4Dot32(blk + 2, q + 32 * b));
  }
  return acc;
}

float DotIq4Xs(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nbk; ++b) {
    const uint8_t* blk = row + 136 * b;
    const int8_t* xq = q + kSuperBlock * b;
    int32_t isum = 0;
    for (int j = 0; j < 8; ++j) isum += Iq4XsScale(blk, j) * Iq4Dot32(blk + 8 + 16 * j, xq + 32 * j);
    acc += (F16At(blk) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

}  // namespace tessera::kernels::internal
