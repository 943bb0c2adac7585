#include "common/gguf/ggml_type.h"

namespace tessera {
namespace {

struct TypeTraits {
  const char* name;
  int64_t block_size;
  size_t block_bytes;
};

// Block byte counts follow ggml's block structs: Q4_0 = f16 d + 16 nibble bytes,
// Q4_1 = f16 d + f16 m + 16, Q8_0 = f16 d + 32 int8, Q4_K = 2 f16 + 12 scale
// bytes + 128, Q5_K = Q4_K + 32 high-bit bytes, Q6_K = 128 + 64 + 16 + f16 d,
// Q5_0 = f16 d + 4 high-bit bytes + 16, Q5_1 = Q5_0 + f16 m, IQ4_NL = f16 d +
// 16 (as Q4_0), Q2_K = 16 scale bytes + 64 + 2 f16, Q3_K = 32 + 64 + 12 + f16
// d, IQ4_XS = f16 d + u16 high scale bits + 4 low scale bytes + 128.
std::optional<TypeTraits> Traits(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return TypeTraits{"F32", 1, 4};
    case GgmlType::kF16:
      return TypeTraits{"F16", 1, 2};
    case GgmlType::kQ4_0:
      return TypeTraits{"Q4_0", 32, 18};
    case GgmlType::kQ4_1:
      return TypeTraits{"Q4_1", 32, 20};
    case GgmlType::kQ5_0:
      return TypeTraits{"Q5_0", 32, 22};
    case GgmlType::kQ5_1:
      return TypeTraits{"Q5_1", 32, 24};
    case GgmlType::kQ8_0:
      return TypeTraits{"Q8_0", 32, 34};
    case GgmlType::kQ2_K:
      return TypeTraits{"Q2_K", 256, 84};
    case GgmlType::kQ3_K:
      return TypeTraits{"Q3_K", 256, 110};
    case GgmlType::kQ4_K:
      return TypeTraits{"Q4_K", 256, 144};
    case GgmlType::kQ5_K:
      return TypeTraits{"Q5_K", 256, 176};
    case GgmlType::kQ6_K:
      return TypeTraits{"Q6_K", 256, 210};
    case GgmlType::kIQ4_NL:
      return TypeTraits{"IQ4_NL", 32, 18};
    case GgmlType::kIQ4_XS:
      return TypeTraits{"IQ4_XS", 256, 136};
    case GgmlType::kBF16:
      return TypeTraits{"BF16", 1, 2};
  }
  return std::nullopt;
}

}  // namespace

const char* GgmlTypeName(GgmlType type) {
  auto t = Traits(type);
  return t ? t->name : "UNKNOWN";
}

std::optional<GgmlType> GgmlTypeFromId(uint32_t id) {
  auto type = static_cast<GgmlType>(id);
  if (!Traits(type)) return std::nullopt;
  return type;
}

const char* UnsupportedGgmlTypeName(uint32_t id) {
  // ggml's type ids that Tessera has no kernels for (ggml.h's enum ggml_type;
  // 4 and 5 were removed formats, 31-33 removed Q4_0 repacks).
  switch (id) {
    case 9: return "Q8_1";
    case 15: return "Q8_K";
    case 16: return "IQ2_XXS";
    case 17: return "IQ2_XS";
    case 18: return "IQ3_XXS";
    case 19: return "IQ1_S";
    case 21: return "IQ3_S";
    case 22: return "IQ2_S";
    case 24: return "I8";
    case 25: return "I16";
    case 26: return "I32";
    case 27: return "I64";
    case 28: return "F64";
    case 29: return "IQ1_M";
    case 34: return "TQ1_0";
    case 35: return "TQ2_0";
    case 39: return "MXFP4";
    default: return "";
  }
}

const char* SupportedGgmlTypeNames() {
  return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, "
         "IQ4_XS";
}

int64_t GgmlBlockSize(GgmlType type) {
  auto t = Traits(type);
  return t ? t->block_size : 0;
}

size_t GgmlBlockBytes(GgmlType type) {
  auto t = Traits(type);
  return t ? t->block_bytes : 0;
}

}  // namespace tessera
