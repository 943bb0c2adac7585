// Storage formats of weights, with their block geometry.
//
// Block formats follow the GGML layouts bit for bit so that GGUF tensors are
// used in place (mmapped, zero-copy):
//   Q8_0: 32 values, f16 scale d, 32 x int8 q;        x = d * q        (34 bytes)
//   Q4_1: 32 values, f16 scale d, f16 min m, 16 bytes; x = d * q + m   (20 bytes)
//         byte j holds value j in its low nibble and value j+16 in its high one.
#ifndef TESSERA_KERNELS_DTYPE_H_
#define TESSERA_KERNELS_DTYPE_H_

#include <cstddef>
#include <cstdint>

namespace tessera::kernels {

enum class DType : uint8_t { kF32, kF16, kBF16, kQ8_0, kQ4_1 };

// Values per block (1 for plain float formats).
int BlockSize(DType t);
// Bytes per block.
size_t BlockBytes(DType t);
// Bytes of a row of `n` values; n must be a multiple of BlockSize(t).
size_t RowBytes(DType t, int64_t n);
const char* DTypeName(DType t);

// IEEE half and bfloat16 conversions (round to nearest even).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t h);
uint16_t F32ToBF16(float f);

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_DTYPE_H_
