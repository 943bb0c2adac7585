// Scalar decoding and dot products of the Q4_0 and K-quant weight formats
// (layouts in kernels/dtype.h). These are the only kernels for the K-quants:
// every ISA's row dispatcher calls them, so those formats have one code path
// and their results are the same bits on every ISA. Q4_0's is the scalar
// ISA's; AVX2 and AVX-512 have their own (matmul_avx2.cc, matmul_avx512.cc).
//
// Dot products follow llama.cpp's shape: per block (Q4_0) or super-block
// (K-quants) the products with the int8 activations, the sub-block scales and
// (Q4_K/Q5_K) the mins against the activation sub-sums are summed exactly in
// int32; only then come float operations, in a fixed order per super-block:
//   acc  += (d_w * d_x) * isum          (all formats)
//   macc += (dmin_w * d_x) * msum       (Q4_K, Q5_K; result acc - macc)
// The bounds keep the int32 sums exact: |isum| <= 256 * 63 * 31 * 127 for Q5_K
// and 256 * 128 * 32 * 127 for Q6_K, both below 2^31.
#include <cstring>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/dtype.h"

namespace tessera::kernels::internal {

float F16At(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return F16ToF32(v);
}

namespace {

// The 6-bit (scale, min) pair of sub-block j of a Q4_K/Q5_K super-block.
void ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Unsigned quant l (0..31) of sub-block j of a Q4_K (qh null) or Q5_K block.
inline int Q45Value(const uint8_t* qs, const uint8_t* qh, int j, int l) {
  const uint8_t byte = qs[32 * (j / 2) + l];
  int q = (j % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
  if (qh != nullptr && ((qh[l] >> j) & 1)) q += 16;
  return q;
}

// Signed quant (q - 32) of value v (0..255) of a Q6_K block.
inline int Q6Value(const uint8_t* blk, int v) {
  const int h = v / 128, k = (v % 128) / 32, l = v % 32;
  const uint8_t lo_byte = blk[64 * h + l + 32 * (k & 1)];
  const int lo = k < 2 ? (lo_byte & 0x0F) : (lo_byte >> 4);
  const int hi = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
  return (lo | (hi << 4)) - 32;
}

inline int Q6Scale(const uint8_t* blk, int v) {
  const int h = v / 128, k = (v % 128) / 32, l = v % 32;
  return static_cast<int8_t>(blk[192 + 8 * h + 2 * k + l / 16]);
}

void DequantizeQ45K(const uint8_t* row, int64_t cols, bool q5, float* out) {
  const size_t bytes = q5 ? 176 : 144;
  for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
    const uint8_t* blk = row + bytes * b;
    const float d = F16At(blk);
    const float dmin = F16At(blk + 2);
    const uint8_t* qh = q5 ? blk + 16 : nullptr;
    const uint8_t* qs = q5 ? blk + 48 : blk + 16;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      ScaleMin(blk + 4, j, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      float* o = out + kSuperBlock * b + 32 * j;
      for (int l = 0; l < 32; ++l) o[l] = d1 * static_cast<float>(Q45Value(qs, qh, j, l)) - m1;
    }
  }
}

float DotQ45K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk, bool q5) {
  const size_t bytes = q5 ? 176 : 144;
  float acc = 0.0f;
  float macc = 0.0f;
  for (int64_t b = 0; b < nbk; ++b) {
    const uint8_t* blk = row + bytes * b;
    const uint8_t* qh = q5 ? blk + 16 : nullptr;
    const uint8_t* qs = q5 ? blk + 48 : blk + 16;
    const int8_t* xq = q + kSuperBlock * b;
    const int16_t* bs = bsums + 16 * b;
    int32_t isum = 0;
    int32_t msum = 0;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      ScaleMin(blk + 4, j, &sc, &m);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) dot += Q45Value(qs, qh, j, l) * xq[32 * j + l];
      isum += sc * dot;
      msum += m * (bs[2 * j] + bs[2 * j + 1]);
    }
    acc += (F16At(blk) * dx[b]) * static_cast<float>(isum);
    macc += (F16At(blk + 2) * dx[b]) * static_cast<float>(msum);
  }
  return acc - macc;
}

}  // namespace

void DequantizeRowQ4_0(const uint8_t* row, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / 32; ++b) {
    const uint8_t* blk = row + 18 * b;
    const float d = F16At(blk);
    const uint8_t* qs = blk + 2;
    float* o = out + 32 * b;
    for (int j = 0; j < 16; ++j) {
      o[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      o[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantizeRowQ4_K(const uint8_t* row, int64_t cols, float* out) {
  DequantizeQ45K(row, cols, false, out);
}

void DequantizeRowQ5_K(const uint8_t* row, int64_t cols, float* out) {
  DequantizeQ45K(row, cols, true, out);
}

void DequantizeRowQ6_K(const uint8_t* row, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
    const uint8_t* blk = row + 210 * b;
    const float d = F16At(blk + 208);
    float* o = out + kSuperBlock * b;
    for (int v = 0; v < kSuperBlock; ++v) {
      o[v] = d * static_cast<float>(Q6Scale(blk, v)) * static_cast<float>(Q6Value(blk, v));
    }
  }
}

float DotQ4_0(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 18 * b;
    const uint8_t* qs = blk + 2;
    const int8_t* xq = q + 32 * b;
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((qs[j] & 0x0F) - 8) * xq[j];
      isum += ((qs[j] >> 4) - 8) * xq[j + 16];
    }
    acc += (F16At(blk) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

float DotQ4_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk) {
  return DotQ45K(row, q, dx, bsums, nbk, false);
}

float DotQ5_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk) {
  return DotQ45K(row, q, dx, bsums, nbk, true);
}

float DotQ6_K(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nbk; ++b) {
    const uint8_t* blk = row + 210 * b;
    const int8_t* xq = q + kSuperBlock * b;
    int32_t isum = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) dot += Q6Value(blk, 16 * s + l) * xq[16 * s + l];
      isum += Q6Scale(blk, 16 * s) * dot;
    }
    acc += (F16At(blk + 208) * dx[b]) * static_cast<float>(isum);
  }
  return acc;
}

}  // namespace tessera::kernels::internal
