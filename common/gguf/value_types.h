// Encoding facts about GGUF metadata value types, shared by the parser and the
// accessors of GgufFile. Internal to common/gguf; pure functions.
#ifndef TESSERA_COMMON_GGUF_VALUE_TYPES_H_
#define TESSERA_COMMON_GGUF_VALUE_TYPES_H_

#include <cstddef>
#include <cstdint>

#include "common/gguf/gguf_file.h"

namespace tessera::gguf_internal {

inline bool IsKnownValueType(uint32_t id) { return id <= 12; }

// Encoded bytes of a numeric or bool scalar; 0 for string and array.
inline size_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

// The fewest bytes one value of type `t` can occupy: used to reject element
// counts that could not possibly fit in the rest of the file.
inline size_t MinEncodedSize(GgufValueType t) {
  if (t == GgufValueType::kString) return 8;  // u64 length
  if (t == GgufValueType::kArray) return 12;  // u32 type + u64 count
  return ScalarSize(t);
}

inline bool IsSignedInteger(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}

inline bool IsUnsignedInteger(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 || t == GgufValueType::kUint32 ||
         t == GgufValueType::kUint64;
}

inline bool IsInteger(GgufValueType t) { return IsSignedInteger(t) || IsUnsignedInteger(t); }

inline bool IsFloat(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

// Sign-extends the low `bytes` bytes of `bits`.
inline int64_t SignExtend(uint64_t bits, size_t bytes) {
  if (bytes >= 8) return static_cast<int64_t>(bits);
  const unsigned shift = 64 - 8 * static_cast<unsigned>(bytes);
  return static_cast<int64_t>(bits << shift) >> shift;
}

}  // namespace tessera::gguf_internal

#endif  // TESSERA_COMMON_GGUF_VALUE_TYPES_H_
