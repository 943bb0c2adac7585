// Storage formats of weights, with their block geometry.
//
// Block formats follow the GGML layouts bit for bit so that GGUF tensors are
// used in place (mmapped, zero-copy):
//   Q8_0: 32 values, f16 scale d, 32 x int8 q;        x = d * q        (34 bytes)
//   Q4_1: 32 values, f16 scale d, f16 min m, 16 bytes; x = d * q + m   (20 bytes)
//         byte j holds value j in its low nibble and value j+16 in its high one.
//   Q4_0: 32 values, f16 scale d, 16 bytes nibbles as Q4_1; x = d * (q - 8) (18 bytes)
//   Q5_0: f16 d, 4 bytes qh, 16 bytes nibbles as Q4_1; value j's fifth bit
//         is bit j of qh (little-endian uint32); x = d * (q - 16)      (22 bytes)
//   Q5_1: f16 d, f16 m, then as Q5_0; x = d * q + m                   (24 bytes)
//   Q2_K: 16 scale bytes (low nibble scale, high nibble min, per 16 values),
//         64 bytes qs, f16 d, f16 dmin; value 128h + 32j + l is bits 2j..2j+1
//         of qs[32h + l], sub-block 8h + 2j + l/16; x = d*sc*q - dmin*m
//                                                                     (84 bytes)
//   Q3_K: 32 bytes hmask, 64 bytes qs (as Q2_K), 12 bytes of sixteen 6-bit
//         scales, f16 d; q = low bits - (bit 4h + j of hmask[l] ? 0 : 4);
//         x = d * (scale - 32) * q                                  (110 bytes)
//   IQ4_NL: as Q4_0 but x = d * kIq4Values[q]                          (18 bytes)
//   IQ4_XS: 256 values: f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes of
//         nibbles (sub-block j of 32: qs[16j..16j+15], low nibbles values
//         0..15, high 16..31); 6-bit scale ls_j = (scales_l[j/2] >> 4(j%2)
//         & 15) | ((scales_h >> 2j) & 3) << 4; x = d * (ls_j - 32) *
//         kIq4Values[q]                                              (136 bytes)
// K-quants: 256-value super-blocks of sub-blocks with their own small scales.
//   Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8
//         sub-blocks of 32, 128 bytes nibbles; x = d*sc*q - dmin*m  (144 bytes)
//         Value 64c + l (l < 32) is the low nibble of qs[32c + l], value
//         64c + 32 + l its high nibble. Pair j < 4: sc = s[j] & 63,
//         m = s[j+4] & 63; j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4,
//         m = (s[j+4] >> 4) | (s[j] >> 6) << 4.
//   Q5_K: as Q4_K plus 32 bytes qh before qs: value 32j + l gets 16 * bit j
//         of qh[l]                                                   (176 bytes)
//   Q6_K: 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d (last); per half
//         h (128 values) value 128h + 32k + l (k < 4, l < 32) has low 4 bits
//         from ql[64h + l + 32(k & 1)] (low nibble for k < 2, high for k >= 2)
//         and high 2 bits (qh[32h + l] >> 2k) & 3; x = d * sc[8h + 2k + l/16]
//         * (q - 32)                                                 (210 bytes)
#ifndef TESSERA_KERNELS_DTYPE_H_
#define TESSERA_KERNELS_DTYPE_H_

#include <cstddef>
#include <cstdint>

#include "base/half.h"

namespace tessera::kernels {

enum class DType : uint8_t {
  kF32, kF16, kBF16, kQ8_0, kQ4_1, kQ4_0, kQ4_K, kQ5_K, kQ6_K, kQ5_0, kQ5_1, kIQ4_NL, kIQ4_XS,
  kQ2_K, kQ3_K
};

// IQ4_NL / IQ4_XS: the 16 values a nibble stands for (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

// Values per K-quant super-block.
inline constexpr int kSuperBlock = 256;

// True for the 256-value super-block formats (Q2_K to Q6_K, IQ4_XS),
// which take Q8_K activations.
bool IsKQuant(DType t);

// Values per block (1 for plain float formats).
int BlockSize(DType t);
// Bytes per block.
size_t BlockBytes(DType t);
// Bytes of a row of `n` values; n must be a multiple of BlockSize(t).
size_t RowBytes(DType t, int64_t n);
const char* DTypeName(DType t);

// IEEE half and bfloat16 conversions (round to nearest even): base/half.h's.
using ::tessera::BF16ToF32;
using ::tessera::F16ToF32;
using ::tessera::F32ToBF16;
using ::tessera::F32ToF16;

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_DTYPE_H_
