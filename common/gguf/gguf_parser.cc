// The GGUF structure parser behind GgufFile::Open and GgufFile::FromBuffer.
//
// Layout (all little-endian; strings are a u64 byte length then the bytes):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//     value: a scalar, a string, or { u32 elem_type | u64 count | elements }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type |
//                    u64 offset (relative to the data section) }
//   zero padding to `alignment` | tensor data
// The rule throughout: check that a count or length can fit in the bytes left
// *before* acting on it, so corrupt input costs at most a linear scan.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/gguf/byte_reader.h"
#include "common/gguf/gguf_file.h"
#include "common/gguf/value_types.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

using gguf_internal::ByteReader;

constexpr char kAlignmentKey[] = "general.alignment";
// Beyond any real model (the largest have a few thousand tensors and a few
// dozen keys); caps what a corrupt header can make us allocate.
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxKeys = uint64_t{1} << 20;
// Smallest possible encodings, for rejecting counts early: a key/value is a
// 1-byte key (8 + 1), a type (4) and a 1-byte value; a tensor descriptor is a
// 1-byte name (8 + 1), n_dims (4), one dimension (8), type (4) and offset (8).
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint64_t kMaxKeyBytes = 65535;      // GGUF spec limit on key length
constexpr uint64_t kMaxTensorNameBytes = 64;  // GGUF spec limit on names
constexpr uint32_t kMaxDims = 4;
// Arrays of arrays are legal GGUF, but nesting deeper than this has no use
// and unbounded nesting would make parsing recurse without limit.
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;

}  // namespace

class GgufFile::Parser {
 public:
  explicit Parser(GgufFile* file) : f_(*file), r_(file->data_, file->size_) {}

  absl::Status Run() {
    uint64_t n_tensors = 0, n_kv = 0;
    RETURN_IF_ERROR(ParseHeader(&n_tensors, &n_kv));
    RETURN_IF_ERROR(ParseMetadata(n_kv));
    RETURN_IF_ERROR(ParseTensorInfos(n_tensors));
    return LayOutData();
  }

 private:
  absl::Status Corrupt(const std::string& detail) const {
    return absl::DataLossError(absl::StrCat(f_.path_, ": ", detail));
  }
  absl::Status Truncated(const std::string& what) const {
    return absl::DataLossError(absl::StrCat(f_.path_, ": truncated at byte ", r_.pos(), " of ",
                                            f_.size_, " while reading ", what));
  }

  absl::Status ParseHeader(uint64_t* n_tensors, uint64_t* n_kv) {
    std::string_view magic;
    if (!r_.ReadBytes(4, &magic)) return Truncated("the GGUF magic");
    if (magic != "GGUF") {
      return Corrupt(absl::StrFormat(
          "not a GGUF file: magic bytes are %02x %02x %02x %02x, "
          "expected 47 47 55 46 (\"GGUF\")",
          uint8_t(magic[0]), uint8_t(magic[1]), uint8_t(magic[2]), uint8_t(magic[3])));
    }
    uint32_t version;
    if (!r_.ReadU32(&version)) return Truncated("the version");
    if (version != 2 && version != 3) {
      const bool big_endian = version == 0x02000000u || version == 0x03000000u;
      return absl::UnimplementedError(absl::StrCat(f_.path_, ": unsupported GGUF version ", version,
                                                   big_endian ? " (a big-endian file)" : "",
                                                   "; supported: 2, 3"));
    }
    f_.version_ = version;
    if (!r_.ReadU64(n_tensors)) return Truncated("the tensor count");
    if (!r_.ReadU64(n_kv)) return Truncated("the metadata key/value count");
    // Each check divides rather than multiplies so that a huge count cannot
    // overflow its way past the test.
    if (*n_kv > kMaxKeys || *n_kv > r_.remaining() / kMinKvBytes) {
      return Corrupt(absl::StrCat("header claims ", *n_kv,
                                  " metadata key/value pairs, which cannot fit in the ",
                                  r_.remaining(), " bytes that follow"));
    }
    if (*n_tensors > kMaxTensors ||
        *n_tensors > (r_.remaining() - *n_kv * kMinKvBytes) / kMinTensorInfoBytes) {
      return Corrupt(absl::StrCat("header claims ", *n_tensors,
                                  " tensors, which cannot fit in the ", r_.remaining(),
                                  " bytes that follow"));
    }
    return absl::OkStatus();
  }

  // Reads a length-prefixed string; `what` names it for errors.
  absl::Status ParseString(const std::string& what, std::string_view* out) {
    uint64_t len;
    if (!r_.ReadU64(&len)) return Truncated(absl::StrCat("the length of ", what));
    if (len > r_.remaining()) {
      return Corrupt(absl::StrCat("the length of ", what, " is ", len, " bytes, more than the ",
                                  r_.remaining(), " bytes left"));
    }
    r_.ReadBytes(len, out);
    return absl::OkStatus();
  }

  absl::Status ReadValueType(const std::string& what, GgufValueType* out) {
    uint32_t id;
    if (!r_.ReadU32(&id)) return Truncated(absl::StrCat("the value type of ", what));
    if (!gguf_internal::IsKnownValueType(id)) {
      return Corrupt(absl::StrCat(what, " has unknown value type id ", id));
    }
    *out = static_cast<GgufValueType>(id);
    return absl::OkStatus();
  }

  // Parses one value of `type` for `key` (already quoted in `what`).
  absl::Status ParseValue(GgufValueType type, const std::string& what, int depth, Value* out) {
    out->type = type;
    if (type == GgufValueType::kString) return ParseString(what, &out->str);
    if (type != GgufValueType::kArray) {
      if (!r_.ReadUnsigned(gguf_internal::ScalarSize(type), &out->scalar_bits)) {
        return Truncated(absl::StrCat("the value of ", what));
      }
      if (type == GgufValueType::kBool && out->scalar_bits > 1) {
        return Corrupt(
            absl::StrCat(what, " is a bool stored as ", out->scalar_bits, "; expected 0 or 1"));
      }
      return absl::OkStatus();
    }

    if (depth >= kMaxArrayDepth) {
      return Corrupt(absl::StrCat(what, " nests arrays deeper than ", kMaxArrayDepth, " levels"));
    }
    RETURN_IF_ERROR(ReadValueType(absl::StrCat("the elements of ", what), &out->elem_type));
    if (!r_.ReadU64(&out->count)) return Truncated(absl::StrCat("the array length of ", what));
    const uint64_t min_size = gguf_internal::MinEncodedSize(out->elem_type);
    if (out->count > r_.remaining() / min_size) {
      return Corrupt(
          absl::StrCat(what, " claims ", out->count, " ", GgufValueTypeName(out->elem_type),
                       " elements, which cannot fit in the ", r_.remaining(), " bytes left"));
    }
    const size_t begin = r_.pos();
    // Element messages are only built on failure: token arrays hold ~10^5
    // strings and this runs on every Open.
    switch (out->elem_type) {
      case GgufValueType::kString:
        for (uint64_t i = 0; i < out->count; ++i) {
          uint64_t len;
          if (!r_.ReadU64(&len)) return Truncated(absl::StrCat("element ", i, " of ", what));
          if (!r_.Skip(len)) {
            return Corrupt(absl::StrCat("the length of element ", i, " of ", what, " is ", len,
                                        " bytes, more than the ", r_.remaining(), " bytes left"));
          }
        }
        break;
      case GgufValueType::kArray: {
        Value element;
        for (uint64_t i = 0; i < out->count; ++i) {
          RETURN_IF_ERROR(ParseValue(GgufValueType::kArray,
                                     absl::StrCat("element ", i, " of ", what), depth + 1,
                                     &element));
        }
        break;
      }
      case GgufValueType::kBool:
        // Validated here so that accessors can trust every element.
        for (uint64_t i = 0; i < out->count; ++i) {
          uint64_t b = 0;
          r_.ReadUnsigned(1, &b);  // fits: checked above
          if (b > 1) {
            return Corrupt(absl::StrCat("element ", i, " of ", what, " is a bool stored as ", b,
                                        "; expected 0 or 1"));
          }
        }
        break;
      default:
        r_.Skip(out->count * min_size);  // fits: checked above
    }
    out->payload = r_.Since(begin);
    return absl::OkStatus();
  }

  absl::Status ParseMetadata(uint64_t n_kv) {
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string_view key;
      RETURN_IF_ERROR(ParseString(absl::StrCat("the key of metadata entry ", i), &key));
      if (key.empty()) return Corrupt(absl::StrCat("metadata entry ", i, " has an empty key"));
      if (key.size() > kMaxKeyBytes) {
        return Corrupt(absl::StrCat("the key of metadata entry ", i, " is ", key.size(),
                                    " bytes long; GGUF allows at most ", kMaxKeyBytes));
      }
      const std::string what = absl::StrCat("metadata key '", gguf_internal::Sv(key), "'");
      GgufValueType type = GgufValueType::kUint8;
      RETURN_IF_ERROR(ReadValueType(what, &type));
      Entry entry{std::string(key), Value{}};
      RETURN_IF_ERROR(ParseValue(type, what, 0, &entry.value));
      if (!f_.entry_index_.emplace(entry.key, f_.entries_.size()).second) {
        return Corrupt(absl::StrCat("duplicate metadata key '", entry.key, "'"));
      }
      if (key == kAlignmentKey) RETURN_IF_ERROR(TakeAlignment(entry.value));
      f_.entries_.push_back(std::move(entry));
    }
    return absl::OkStatus();
  }

  absl::Status TakeAlignment(const Value& v) {
    if (!gguf_internal::IsUnsignedInteger(v.type)) {
      return Corrupt(absl::StrCat("metadata key '", kAlignmentKey, "' has type ",
                                  GgufValueTypeName(v.type), "; expected uint32"));
    }
    const uint64_t a = v.scalar_bits;
    if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment) {
      return Corrupt(absl::StrCat("metadata key '", kAlignmentKey, "' is ", a,
                                  "; expected a power of two up to ", kMaxAlignment));
    }
    f_.alignment_ = static_cast<size_t>(a);
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfo(uint64_t index, GgufTensorInfo* t) {
    std::string_view name;
    RETURN_IF_ERROR(ParseString(absl::StrCat("the name of tensor ", index), &name));
    if (name.empty()) return Corrupt(absl::StrCat("tensor ", index, " has an empty name"));
    if (name.size() > kMaxTensorNameBytes) {
      return Corrupt(absl::StrCat("the name of tensor ", index, " is ", name.size(),
                                  " bytes long; GGUF allows at most ", kMaxTensorNameBytes));
    }
    t->name = std::string(name);
    const std::string what = absl::StrCat("tensor '", t->name, "'");

    uint32_t n_dims;
    if (!r_.ReadU32(&n_dims)) return Truncated(absl::StrCat("the rank of ", what));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return Corrupt(absl::StrCat(what, " has ", n_dims, " dimensions; expected 1 to ", kMaxDims));
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne;
      if (!r_.ReadU64(&ne)) return Truncated(absl::StrCat("the shape of ", what));
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
        return Corrupt(absl::StrCat(what, " has dimension ", d, " = ", ne,
                                    ", which is zero or makes the element count overflow"));
      }
      elements *= ne;
      t->shape.push_back(static_cast<int64_t>(ne));
    }

    uint32_t type_id;
    if (!r_.ReadU32(&type_id)) return Truncated(absl::StrCat("the type of ", what));
    auto type = GgmlTypeFromId(type_id);
    if (!type) {
      if (const std::string name = UnsupportedGgmlTypeName(type_id); !name.empty()) {
        // A real ggml format, just not one Tessera has kernels for.
        return absl::UnimplementedError(absl::StrCat(
            f_.path_, ": ", what, " is stored as ", name, " (ggml type ", type_id,
            "), which Tessera does not support; supported: ", SupportedGgmlTypeNames(),
            ". Requantize the model to one of those (llama.cpp's quantize)."));
      }
      return Corrupt(absl::StrCat(what, " has unknown ggml type id ", type_id));
    }
    t->type = *type;
    const uint64_t block = static_cast<uint64_t>(GgmlBlockSize(t->type));
    if (static_cast<uint64_t>(t->shape[0]) % block != 0) {
      return Corrupt(absl::StrCat(what, " has rows of ", t->shape[0], " values, not a multiple of ",
                                  GgmlTypeName(t->type), "'s block of ", block));
    }
    const uint64_t blocks = elements / block;
    const uint64_t block_bytes = GgmlBlockBytes(t->type);
    if (blocks > std::numeric_limits<uint64_t>::max() / block_bytes) {
      return Corrupt(absl::StrCat(what, " is too large: its byte size overflows"));
    }
    t->size_bytes = blocks * block_bytes;

    if (!r_.ReadU64(&t->offset)) return Truncated(absl::StrCat("the data offset of ", what));
    if (t->offset % f_.alignment_ != 0) {
      return Corrupt(absl::StrCat(what, " has data offset ", t->offset,
                                  ", not a multiple of the alignment ", f_.alignment_));
    }
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfos(uint64_t n_tensors) {
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      RETURN_IF_ERROR(ParseTensorInfo(i, &t));
      if (!f_.tensor_index_.emplace(t.name, f_.tensors_.size()).second) {
        return Corrupt(absl::StrCat("duplicate tensor name '", t.name, "'"));
      }
      f_.tensors_.push_back(std::move(t));
    }
    return absl::OkStatus();
  }

  absl::Status LayOutData() {
    const uint64_t end_of_infos = r_.pos();
    const uint64_t data_start = (end_of_infos + f_.alignment_ - 1) / f_.alignment_ * f_.alignment_;
    if (f_.tensors_.empty()) {
      // Without tensors the padding carries nothing, so a writer may omit it.
      f_.header_bytes_ = static_cast<size_t>(std::min<uint64_t>(data_start, f_.size_));
      return absl::OkStatus();
    }
    if (data_start > f_.size_) {
      return Corrupt(absl::StrCat("the tensor data section would start at byte ", data_start,
                                  ", past the end of the ", f_.size_, "-byte file"));
    }
    f_.header_bytes_ = static_cast<size_t>(data_start);
    const uint64_t section = f_.size_ - data_start;
    for (const GgufTensorInfo& t : f_.tensors_) {
      if (t.offset > section || t.size_bytes > section - t.offset) {
        return Corrupt(absl::StrCat("tensor '", t.name, "' data (offset ", t.offset, ", ",
                                    t.size_bytes, " bytes) extends past the end of the ", section,
                                    "-byte tensor data section"));
      }
    }
    std::vector<size_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [this](size_t a, size_t b) { return f_.tensors_[a].offset < f_.tensors_[b].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const GgufTensorInfo& prev = f_.tensors_[order[i - 1]];
      const GgufTensorInfo& next = f_.tensors_[order[i]];
      if (prev.offset + prev.size_bytes > next.offset) {  // no overflow: both are in range
        return Corrupt(absl::StrCat("tensors '", prev.name, "' (offset ", prev.offset, ", ",
                                    prev.size_bytes, " bytes) and '", next.name, "' (offset ",
                                    next.offset, ") overlap"));
      }
    }
    return absl::OkStatus();
  }

  GgufFile& f_;
  ByteReader r_;
};

absl::Status GgufFile::Parse() { return Parser(this).Run(); }

}  // namespace tessera
