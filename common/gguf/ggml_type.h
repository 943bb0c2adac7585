// Tensor storage types that a GGUF file may declare, with their block geometry.
//
// The numeric ids are ggml's `ggml_type` values, which GGUF stores verbatim in
// each tensor descriptor, so they must never be renumbered. Only the types
// Tessera can load are listed; any other id in a file is reported as corrupt
// or unsupported by the parser rather than silently mis-sized.
//
// Everything here is a pure function of its arguments and thread-safe.
#ifndef TESSERA_COMMON_GGUF_GGML_TYPE_H_
#define TESSERA_COMMON_GGUF_GGML_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tessera {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kBF16 = 30,
};

// "F32", "Q4_1", ... ; "UNKNOWN" for a value outside the enum.
const char* GgmlTypeName(GgmlType type);

// The GgmlType with ggml id `id`, or nullopt when Tessera does not know it.
std::optional<GgmlType> GgmlTypeFromId(uint32_t id);

// ggml's name for a type id Tessera does not support ("IQ2_XXS" for 16),
// or "" when ggml has no type with that id either.
const char* UnsupportedGgmlTypeName(uint32_t id);

// The names of the types Tessera loads, comma-separated, for messages.
const char* SupportedGgmlTypeNames();

// Values per block: 1 for plain float types, 32 or 256 for quantised ones.
int64_t GgmlBlockSize(GgmlType type);

// Bytes per block (for plain float types, bytes per value).
size_t GgmlBlockBytes(GgmlType type);

}  // namespace tessera

#endif  // TESSERA_COMMON_GGUF_GGML_TYPE_H_
