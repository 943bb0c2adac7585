// Scalar decoding and dot products of Q5_0 and Q5_1 (layouts in
// kernels/dtype.h), the 5-bit block formats llama.cpp's quantizer mixes into
// its K-quant files (Q4_K_M uses Q5_0 for rows whose width is not a multiple
// of 256; Q5_K_M uses Q5_1). Like Q4_0 and the K-quants (kquants.cc) they
// have one code path, shared by every ISA's row dispatcher, so their results
// are the same bits on every ISA.
//
// Dot products take one token's quantised activations (kernels/cpu/
// quantize.h): Q8_0 blocks for Q5_0, Q8_1 blocks (with s = d * sum(q)) for
// Q5_1, as llama.cpp pairs them. Per block the products are summed exactly in
// int32 (|isum| <= 32 * 31 * 127), then, in block order:
//   acc  += (d_w * d_x) * isum
//   mins += m_w * s_x          (Q5_1; result acc + mins, as Q4_1)
#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

// The 32 unsigned 5-bit quants of one block: `qh` (4 bytes, bit j = value
// j's fifth bit) and `qs` (16 bytes: value j in the low nibble of qs[j],
// value j + 16 in its high nibble).
void Unpack5(const uint8_t* qh_bytes, const uint8_t* qs, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
  }
}

}  // namespace

void DequantizeRowQ5_0(const uint8_t* row, int64_t cols, float* out) {
  int q[32];
  for (int64_t b = 0; b < cols / 32; ++b) {
    const uint8_t* blk = row + 22 * b;
    const float d = F16At(blk);
    Unpack5(blk + 2, blk + 6, q);
    for (int j = 0; j < 32; ++j) out[32 * b + j] = d * static_cast<float>(q[j] - 16);
  }
}

void DequantizeRowQ5_1(const uint8_t* row, int64_t cols, float* out) {
  int q[32];
  for (int64_t b = 0; b < cols / 32; ++b) {
    const uint8_t* blk = row + 24 * b;
    const float d = F16At(blk);
    const float m = F16At(blk + 2);
    Unpack5(blk + 4, blk + 8, q);
    for (int j = 0; j < 32; ++j) out[32 * b + j] = d * static_cast<float>(q[j]) + m;
  }
}

float DotQ5_0(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb) {
  float acc = 0.0f;
  int w[32];
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 22 * b;
    Unpack5(blk + 2, blk + 6, w);
    const int8_t* xq = q + 32 * b;
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += (w[j] - 16) * xq[j];
    acc += (F16At(blk) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

float DotQ5_1(const uint8_t* row, const int8_t* q, const float* dx, const float* sx,
              int64_t nb) {
  float acc = 0.0f;
  float mins = 0.0f;
  int w[32];
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 24 * b;
    Unpack5(blk + 4, blk + 8, w);
    const int8_t* xq = q + 32 * b;
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += w[j] * xq[j];
    acc += (F16At(blk) * dx[b]) * static_cast<float>(isum);
    mins += F16At(blk + 2) * sx[b];
  }
  return acc + mins;
}

}  // namespace tessera::kernels::internal
