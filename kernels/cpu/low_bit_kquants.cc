// Scalar decoding and dot products of Q2_K and Q3_K (layouts in
// kernels/dtype.h), the 2- and 3-bit K-quants llama.cpp's quantizer writes
// for its Q2_K and Q3_K_{S,M,L} files. One code path for every ISA, so the
// results are the same bits everywhere.
//
// Against Q8_K activations, per super-block of 256 in 16 sub-blocks of 16,
// exact int32 sums as llama.cpp forms them, then in super-block order:
//   Q2_K  acc += (d_w * d_x) * sum_s sc_s * sum(q * x)        q in 0..3
//         macc += (dmin_w * d_x) * sum_s m_s * bsum_s;  result acc - macc
//   Q3_K  acc += (d_w * d_x) * sum_s (sc_s - 32) * sum(q * x)  q in -4..3
#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/dtype.h"

namespace tessera::kernels::internal {
namespace {

// Value v (0..255) of a super-block sits at bit pair 2j of qs[32h + l],
// with v = 128h + 32j + l; its sub-block of 16 is 8h + 2j + l / 16.
inline int Q2Bits(const uint8_t* qs, int v) {
  const int h = v / 128, j = (v % 128) / 32, l = v % 32;
  return (qs[32 * h + l] >> (2 * j)) & 3;
}
inline int SubBlock(int v) { return 8 * (v / 128) + 2 * ((v % 128) / 32) + (v % 32) / 16; }

// Q3_K's signed quant of value v: the two low bits, minus 4 unless bit
// 4h + j of hmask[l] is set.
inline int Q3Value(const uint8_t* blk, int v) {
  const int h = v / 128, j = (v % 128) / 32, l = v % 32;
  const int high = (blk[l] >> (4 * h + j)) & 1;
  return Q2Bits(blk + 32, v) - (high ? 0 : 4);
}

}  // namespace

void UnpackQ3Scales(const uint8_t* packed, int* scales) {
  uint32_t aux[4];
  std::memcpy(aux, packed, 12);
  const uint32_t tmp = aux[2];
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  uint8_t bytes[16];
  std::memcpy(bytes, aux, 16);
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<int>(bytes[s]) - 32;
}

void DequantizeRowQ2_K(const uint8_t* row, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
    const uint8_t* blk = row + 84 * b;
    const float d = F16At(blk + 80);
    const float dmin = F16At(blk + 82);
    for (int v = 0; v < kSuperBlock; ++v) {
      const int sc = blk[SubBlock(v)];
      out[kSuperBlock * b + v] = d * static_cast<float>(sc & 0x0F) * static_cast<float>(Q2Bits(blk + 16, v)) -
                                 dmin * static_cast<float>(sc >> 4);
    }
  }
}

void DequantizeRowQ3_K(const uint8_t* row, int64_t cols, float* out) {
  int scales[16];
  for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
    const uint8_t* blk = row + 110 * b;
    const float d = F16At(blk + 108);
    UnpackQ3Scales(blk + 96, scales);
    for (int v = 0; v < kSuperBlock; ++v) {
      out[kSuperBlock * b + v] =
          d * static_cast<float>(scales[SubBlock(v)]) * static_cast<float>(Q3Value(blk, v));
    }
  }
}

float DotQ2_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk) {
  float acc = 0.0f;
  float macc = 0.0f;
  for (int64_t b = 0; b < nbk; ++b) {
    const uint8_t* blk = row + 84 * b;
    const int8_t* xq = q + kSuperBlock * b;
    const int16_t* bs = bsums + 16 * b;
    int32_t sub[16] = {0};
    for (int v = 0; v < kSuperBlock; ++v) sub[SubBlock(v)] += Q2Bits(blk + 16, v) * xq[v];
    int32_t isum = 0, msum = 0;
    for (int s = 0; s < 16; ++s) {
      isum += (blk[s] & 0x0F) * sub[s];
      msum += (blk[s] >> 4) * bs[s];
    }
    acc += (F16At(blk + 80) * dx[b]) * static_cast<float>(isum);
    macc += (F16At(blk + 82) * dx[b]) * static_cast<float>(msum);
  }
  return acc - macc;
}

float DotQ3_K(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk) {
  float acc = 0.0f;
  int scales[16];
  for (int64_t b = 0; b < nbk; ++b) {
    const uint8_t* blk = row + 110 * b;
    const int8_t* xq = q + kSuperBlock * b;
    UnpackQ3Scales(blk + 96, scales);
    int32_t sub[16] = {0};
    for (int v = 0; v < kSuperBlock; ++v) sub[SubBlock(v)] += Q3Value(blk, v) * xq[v];
    int32_t isum = 0;
    for (int s = 0; s < 16; ++s) isum += scales[s] * sub[s];
    acc += (F16At(blk + 108) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

}  // namespace tessera::kernels::internal
