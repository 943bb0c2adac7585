// Encoders from float values to the byte layouts GGUF stores, so that tests
// (and tools) can build tensors without ggml.
//
// The quantisers follow ggml's reference ("_ref") quantisers, so a tensor we
// write dequantises the way a llama.cpp-written one would:
//   Q8_0: per block of 32, d = amax / 127, q = round(x / d) (computed as
//         x * (1/d), half away from zero); stored as f16 d then 32 int8 q.
//   Q4_1: per block of 32, m = min, d = (max - min) / 15,
//         q = min(15, floor((x - m) / d + 0.5)); stored as f16 d, f16 m, then
//         16 bytes whose low nibble is element j and high nibble element j+16.
// Half-precision conversions are base/half.h's.
//
// All functions are pure and thread-safe.
#ifndef TESSERA_COMMON_GGUF_TENSOR_ENCODING_H_
#define TESSERA_COMMON_GGUF_TENSOR_ENCODING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/half.h"

namespace tessera {

// Little-endian encodings of `values` in the named GGML type, ready for
// GgufWriter::AddTensor. The block formats need values.size() to be a multiple
// of 32; otherwise they return an empty string (which AddTensor then rejects
// with a size error naming the tensor).
std::string EncodeF32(const std::vector<float>& values);
std::string EncodeF16(const std::vector<float>& values);
std::string EncodeBF16(const std::vector<float>& values);
std::string EncodeQ8_0(const std::vector<float>& values);
std::string EncodeQ4_1(const std::vector<float>& values);

}  // namespace tessera

#endif  // TESSERA_COMMON_GGUF_TENSOR_ENCODING_H_
