// Device decoding of the quantised weight formats the GPU takes (Q8_0 and
// Q4_K; layouts in kernels/dtype.h), value for value what the CPU's
// DequantizeRow gives (kernels/cpu/quantize.cc, kernels/cpu/kquants.cc):
//   Q8_0  d * q                      (exact in float32)
//   Q4_K  (d * sc) * q - dmin * m    (the products exact, one rounding in
//                                     the subtraction, as the CPU's
//                                     DequantizeQ45K; this file is compiled
//                                     with --fmad=false, so no contraction)
// Decode8 takes 8 consecutive columns starting at a multiple of 8 (inside
// one 32-value block or sub-block), Decode1 one column. `row` is the row's
// first byte.
#ifndef TESSERA_KERNELS_CUDA_QUANT_BLOCKS_CUH_
#define TESSERA_KERNELS_CUDA_QUANT_BLOCKS_CUH_

#include <cuda_fp16.h>

#include <cstdint>

namespace tessera::kernels::cuda {

__device__ __forceinline__ float HalfAt(const uint8_t* p) {
  const uint16_t bits = static_cast<uint16_t>(p[0]) | static_cast<uint16_t>(p[1]) << 8;
  return __half2float(__ushort_as_half(bits));
}

struct Q8_0Decoder {
  static constexpr int64_t kBlock = 32;
  static constexpr int64_t kBlockBytes = 34;

  static __device__ __forceinline__ void Decode8(const uint8_t* row, int64_t i, float out[8]) {
    const uint8_t* blk = row + (i / kBlock) * kBlockBytes;
    const float d = HalfAt(blk);
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2 + i % kBlock);
#pragma unroll
    for (int j = 0; j < 8; ++j) out[j] = d * static_cast<float>(q[j]);
  }

  static __device__ __forceinline__ float Decode1(const uint8_t* row, int64_t c) {
    const uint8_t* blk = row + (c / kBlock) * kBlockBytes;
    return HalfAt(blk) * static_cast<float>(reinterpret_cast<const int8_t*>(blk + 2)[c % kBlock]);
  }
};

struct Q4_KDecoder {
  static constexpr int64_t kBlock = 256;
  static constexpr int64_t kBlockBytes = 144;

  // The 6-bit (scale, min) of sub-block j (0..7) from the 12 packed bytes.
  static __device__ __forceinline__ void ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
    if (j < 4) {
      *sc = s[j] & 63;
      *m = s[j + 4] & 63;
    } else {
      *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
      *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
  }

  // Value v (0..255) of a super-block: sub-block j = v / 32, l = v % 32,
  // quant = nibble (j % 2) of qs[32 * (j / 2) + l].
  static __device__ __forceinline__ void Decode8(const uint8_t* row, int64_t i, float out[8]) {
    const uint8_t* blk = row + (i / kBlock) * kBlockBytes;
    const int v = static_cast<int>(i % kBlock);
    const int j = v / 32;
    int sc, m;
    ScaleMin(blk + 4, j, &sc, &m);
    const float d1 = HalfAt(blk) * static_cast<float>(sc);
    const float m1 = HalfAt(blk + 2) * static_cast<float>(m);
    const uint8_t* qs = blk + 16 + 32 * (j / 2) + v % 32;
    const int shift = 4 * (j % 2);
#pragma unroll
    for (int k = 0; k < 8; ++k) out[k] = d1 * static_cast<float>((qs[k] >> shift) & 0x0F) - m1;
  }

  static __device__ __forceinline__ float Decode1(const uint8_t* row, int64_t c) {
    float out[8];
    Decode8(row, c / 8 * 8, out);
    return out[c % 8];
  }
};

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_QUANT_BLOCKS_CUH_
