#include "common/gguf/gguf_file.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/gguf/byte_reader.h"
#include "common/gguf/value_types.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

using gguf_internal::IsFloat;
using gguf_internal::IsInteger;
using gguf_internal::IsSignedInteger;
using gguf_internal::LoadLittleEndian;
using gguf_internal::ScalarSize;
using gguf_internal::SignExtend;
using gguf_internal::Sv;

constexpr std::align_val_t kBufferAlignment{64};

// A decoded integer: signed types are sign-extended, unsigned zero-extended.
struct IntegerValue {
  bool is_signed;
  uint64_t bits;
  bool negative() const { return is_signed && static_cast<int64_t>(bits) < 0; }
};

IntegerValue DecodeInteger(GgufValueType type, uint64_t raw) {
  if (IsSignedInteger(type)) {
    return {true, static_cast<uint64_t>(SignExtend(raw, ScalarSize(type)))};
  }
  return {false, raw};
}

double DecodeNumber(GgufValueType type, uint64_t raw) {
  if (type == GgufValueType::kFloat32) {
    uint32_t bits = static_cast<uint32_t>(raw);
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  }
  if (type == GgufValueType::kFloat64) {
    double d;
    std::memcpy(&d, &raw, sizeof(d));
    return d;
  }
  IntegerValue v = DecodeInteger(type, raw);
  return v.is_signed ? static_cast<double>(static_cast<int64_t>(v.bits))
                     : static_cast<double>(v.bits);
}

// double -> float where an out-of-range conversion would be undefined
// behaviour: magnitudes beyond float's range become infinities.
float NarrowToFloat(double d) {
  if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
    return d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  }
  return static_cast<float>(d);
}

}  // namespace

const char* GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

int64_t GgufTensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void GgufFile::AlignedDelete::operator()(uint8_t* p) const {
  ::operator delete(p, kBufferAlignment);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  std::unique_ptr<GgufFile> file(new GgufFile(path));
  file->data_ = mapping->data();
  file->size_ = mapping->size();
  file->mapping_ = std::move(mapping);
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::string name,
                                                               std::string bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile(std::move(name)));
  // Allocated at exactly the input size so that sanitizers catch any read
  // past the end.
  file->owned_.reset(
      static_cast<uint8_t*>(::operator new(bytes.empty() ? 1 : bytes.size(), kBufferAlignment)));
  if (!bytes.empty()) std::memcpy(file->owned_.get(), bytes.data(), bytes.size());
  file->data_ = file->owned_.get();
  file->size_ = bytes.size();
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::WithExternalTensors(
    std::unique_ptr<GgufFile> metadata, std::vector<ExternalTensor> tensors,
    std::shared_ptr<const void> keep_alive) {
  std::unique_ptr<GgufFile> f = std::move(metadata);
  f->keep_alive_ = std::move(keep_alive);
  for (ExternalTensor& e : tensors) {
    GgufTensorInfo t = std::move(e.info);
    const std::string what = absl::StrCat(f->path_, ": tensor '", t.name, "'");
    if (t.shape.empty() || t.shape.size() > 4) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has ", t.shape.size(),
                                                     " dimensions; 1 to 4 expected"));
    }
    for (int64_t d : t.shape) {
      if (d <= 0) return absl::InvalidArgumentError(absl::StrCat(what, " has a dimension ", d));
    }
    if (t.shape[0] % GgmlBlockSize(t.type) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " rows are not a whole number of ", GgmlTypeName(t.type), " blocks"));
    }
    uint64_t rows = 1;
    for (size_t i = 1; i < t.shape.size(); ++i) rows *= static_cast<uint64_t>(t.shape[i]);
    t.size_bytes = static_cast<uint64_t>(t.shape[0] / GgmlBlockSize(t.type)) *
                   GgmlBlockBytes(t.type) * rows;
    t.offset = 0;
    t.external = e.data;
    t.producer = -1;
    if (e.data == nullptr) {
      if (!e.produce) {
        return absl::InvalidArgumentError(absl::StrCat(what, " has neither data nor producer"));
      }
      t.producer = static_cast<int64_t>(f->producers_.size());
      f->producers_.push_back(std::move(e.produce));
    }
    if (!f->tensor_index_.emplace(t.name, f->tensors_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is defined twice"));
    }
    f->tensors_.push_back(std::move(t));
  }
  absl::MutexLock lock(&f->produce_mu_);
  f->produced_.resize(f->producers_.size());
  return f;
}

const uint8_t* GgufFile::Produce(const GgufTensorInfo& t) const {
  absl::MutexLock lock(&produce_mu_);
  std::unique_ptr<uint8_t[]>& buf = produced_[t.producer];
  if (buf == nullptr) {
    buf.reset(new uint8_t[t.size_bytes == 0 ? 1 : t.size_bytes]);
    producers_[t.producer](buf.get());
  }
  return buf.get();
}

std::vector<std::string> GgufFile::ProducedTensors() const {
  std::vector<std::string> names;
  absl::MutexLock lock(&produce_mu_);
  for (const GgufTensorInfo& t : tensors_) {
    if (t.producer >= 0 && produced_[t.producer] != nullptr) names.push_back(t.name);
  }
  return names;
}

bool GgufFile::Has(std::string_view key) const { return entry_index_.contains(Sv(key)); }

std::vector<std::string> GgufFile::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(entries_.size());
  for (const Entry& e : entries_) keys.push_back(e.key);
  return keys;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(Sv(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const GgufFile::Value*> GgufFile::Lookup(std::string_view key) const {
  auto it = entry_index_.find(Sv(key));
  if (it == entry_index_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": metadata key '", Sv(key), "' not found"));
  }
  return &entries_[it->second].value;
}

absl::Status GgufFile::TypeMismatch(std::string_view key, const char* expected,
                                    const Value& v) const {
  std::string actual = GgufValueTypeName(v.type);
  if (v.type == GgufValueType::kArray) {
    absl::StrAppend(&actual, " of ", GgufValueTypeName(v.elem_type));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path_, ": metadata key '", Sv(key), "' is ", actual, ", expected ", expected));
}

absl::StatusOr<GgufValueType> GgufFile::GetType(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  return v->type;
}

absl::StatusOr<uint64_t> GgufFile::GetArrayLength(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kArray) return TypeMismatch(key, "array", *v);
  return v->count;
}

absl::StatusOr<uint64_t> GgufFile::GetUint(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (!IsInteger(v->type)) return TypeMismatch(key, "an unsigned integer", *v);
  IntegerValue i = DecodeInteger(v->type, v->scalar_bits);
  if (i.negative()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": metadata key '", Sv(key), "' is ",
                                                   static_cast<int64_t>(i.bits),
                                                   ", expected a non-negative integer"));
  }
  return i.bits;
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (!IsInteger(v->type)) return TypeMismatch(key, "an integer", *v);
  IntegerValue i = DecodeInteger(v->type, v->scalar_bits);
  if (!i.is_signed && i.bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": metadata key '", Sv(key), "' is ",
                                                   i.bits, ", which does not fit in int64"));
  }
  return static_cast<int64_t>(i.bits);
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (!IsFloat(v->type) && !IsInteger(v->type)) return TypeMismatch(key, "a number", *v);
  return DecodeNumber(v->type, v->scalar_bits);
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kBool) return TypeMismatch(key, "bool", *v);
  return v->scalar_bits != 0;
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kString) return TypeMismatch(key, "string", *v);
  return std::string(v->str);
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kArray || v->elem_type != GgufValueType::kString) {
    return TypeMismatch(key, "array of string", *v);
  }
  // The parser walked these same bytes, so every read succeeds; the checks
  // stay anyway because they are cheap.
  gguf_internal::ByteReader r(reinterpret_cast<const uint8_t*>(v->payload.data()),
                              v->payload.size());
  std::vector<std::string> out;
  out.reserve(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    uint64_t len;
    std::string_view s;
    if (!r.ReadU64(&len) || !r.ReadBytes(len, &s)) {
      return absl::InternalError(
          absl::StrCat(path_, ": metadata key '", Sv(key), "' changed after it was validated"));
    }
    out.emplace_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kArray || !IsInteger(v->elem_type)) {
    return TypeMismatch(key, "array of integer", *v);
  }
  const size_t width = ScalarSize(v->elem_type);
  const auto* p = reinterpret_cast<const uint8_t*>(v->payload.data());
  std::vector<int64_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    IntegerValue e = DecodeInteger(v->elem_type, LoadLittleEndian(p + i * width, width));
    if (!e.is_signed && e.bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": metadata key '", Sv(key),
                                                     "' element ", i, " is ", e.bits,
                                                     ", which does not fit in int64"));
    }
    out[i] = static_cast<int64_t>(e.bits);
  }
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const Value* v, Lookup(key));
  if (v->type != GgufValueType::kArray || !(IsFloat(v->elem_type) || IsInteger(v->elem_type))) {
    return TypeMismatch(key, "array of number", *v);
  }
  const size_t width = ScalarSize(v->elem_type);
  const auto* p = reinterpret_cast<const uint8_t*>(v->payload.data());
  std::vector<float> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    out[i] = NarrowToFloat(DecodeNumber(v->elem_type, LoadLittleEndian(p + i * width, width)));
  }
  return out;
}

}  // namespace tessera
