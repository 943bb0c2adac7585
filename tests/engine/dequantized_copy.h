// Writes a copy of a GGUF model with every matrix dequantized to F32 (same
// metadata, same values). Comparing such a copy with llama.cpp measures the
// forward pass itself: with F32 weights neither side quantizes activations, so
// summation-order differences stay at float32 rounding size instead of being
// amplified by int8 rounding flips (see docs/numerics.md).
#ifndef TESSERA_TESTS_ENGINE_DEQUANTIZED_COPY_H_
#define TESSERA_TESTS_ENGINE_DEQUANTIZED_COPY_H_

#include <string>

#include "absl/status/status.h"

namespace tessera::testing {

absl::Status WriteDequantizedCopy(const std::string& in_path, const std::string& out_path);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_DEQUANTIZED_COPY_H_
