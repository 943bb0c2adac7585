// IEEE 754 binary16 and bfloat16 <-> binary32: the one implementation every
// part of the tree uses (kernels widen weights with it, common/gguf encodes
// tensors with it, tests compute references with it).
//
// Narrowing rounds to nearest even; overflow becomes infinity; NaN stays NaN
// and is made quiet (as the F16C instructions do), so every ISA widens every
// bit pattern alike.
//
// Thread-safety: pure functions.
#ifndef TESSERA_BASE_HALF_H_
#define TESSERA_BASE_HALF_H_

#include <cstdint>

namespace tessera {

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t h);
uint16_t F32ToBF16(float f);

}  // namespace tessera

#endif  // TESSERA_BASE_HALF_H_
