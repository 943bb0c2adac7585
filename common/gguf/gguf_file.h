// A parsed, validated GGUF (v3, or the layout-identical v2) model file.
//
// GGUF is a little-endian container: a header, typed key/value metadata,
// tensor descriptors, then an aligned blob of tensor data. Open() maps the file
// and parses and checks *all* of the structure up front, so that every later
// accessor is a cheap lookup that cannot walk off the mapping:
//   - every length and count is checked against the bytes remaining before
//     anything is allocated or skipped (a corrupt count fails, it never asks
//     for gigabytes);
//   - each tensor has 1..4 positive dimensions, a known type, a row length that
//     is a whole number of blocks, an aligned offset, and a data range that
//     lies inside the file and overlaps no other tensor;
//   - metadata keys and tensor names are unique.
// Corruption is reported as DATA_LOSS (an unsupported version as
// UNIMPLEMENTED) with a message that names the file and the key or tensor.
//
// Tensor data is never copied: TensorData() points into the mapping, which
// lives as long as the GgufFile. A GgufFile is immutable after construction
// and safe to read from many threads at once.
//
// WithExternalTensors() builds a GgufFile whose metadata is a parsed GGUF but
// whose tensors live elsewhere (a Hugging Face directory's safetensors
// mappings, see common/safetensors/hf_gguf_view.h): each is a pointer, or a
// function that produces its bytes on first access (a re-laid-out copy), so
// only the tensors somebody reads are ever touched.
#ifndef TESSERA_COMMON_GGUF_GGUF_FILE_H_
#define TESSERA_COMMON_GGUF_GGUF_FILE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/gguf/ggml_type.h"
#include "common/mapped_file.h"

namespace tessera {

// Metadata value types, numbered as GGUF stores them.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array", ...
const char* GgufValueTypeName(GgufValueType type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ne0 (the contiguous, row dimension) first
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;      // from the start of the tensor data section
  uint64_t size_bytes = 0;  // computed from type and shape
  // Only for tensors added by WithExternalTensors: where the bytes are, or
  // (when null) the index of the function that produces them.
  const uint8_t* external = nullptr;
  int64_t producer = -1;

  int64_t num_elements() const;
};

class GgufFile {
 public:
  // Maps `path` and parses it; the tensor data stays in the mapping.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  // Parses a copy of `bytes`, held in a 64-byte-aligned buffer so that tensor
  // data is as aligned as in a mapped file. `name` stands in for the path in
  // error messages. Meant for tests and fuzzing.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(std::string name, std::string bytes);

  // A tensor for WithExternalTensors: `info` gives name, shape and type
  // (offset and size_bytes are recomputed); the bytes are `data`, or, when
  // `data` is null, what `produce` writes into a buffer of size_bytes on the
  // first TensorData() call.
  struct ExternalTensor {
    GgufTensorInfo info;
    const uint8_t* data = nullptr;
    std::function<void(uint8_t* out)> produce;
  };
  // `metadata` (typically a tensor-less GGUF from FromBuffer) with `tensors`
  // appended; `keep_alive` owns whatever the data pointers point into.
  // INVALID_ARGUMENT naming the tensor for a duplicate name, a bad shape or a
  // tensor with neither data nor producer.
  static absl::StatusOr<std::unique_ptr<GgufFile>> WithExternalTensors(
      std::unique_ptr<GgufFile> metadata, std::vector<ExternalTensor> tensors,
      std::shared_ptr<const void> keep_alive);

  ~GgufFile() = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }

  // Metadata. A missing key is NOT_FOUND ("<path>: metadata key 'k' not
  // found"); a value of another type is INVALID_ARGUMENT naming the key, the
  // expected type and the actual one.
  bool Has(std::string_view key) const;
  // Any integer type whose value is non-negative.
  absl::StatusOr<uint64_t> GetUint(std::string_view key) const;
  // Any integer type whose value fits in int64.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  // float32/float64, or any integer type (converted).
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  // An array of any integer type whose values fit in int64.
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  // An array of float32/float64 or of any integer type (converted).
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  // The element count of an array value, without decoding it.
  absl::StatusOr<uint64_t> GetArrayLength(std::string_view key) const;
  // The value's type (for an array, kArray); NOT_FOUND if absent.
  absl::StatusOr<GgufValueType> GetType(std::string_view key) const;
  // All keys, in file order.
  std::vector<std::string> Keys() const;

  // Tensors, in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // The first byte of `t`'s data; `t` must be one of this file's tensors.
  const uint8_t* TensorData(const GgufTensorInfo& t) const {
    if (t.external != nullptr) return t.external;
    if (t.producer >= 0) return Produce(t);
    return data_ + header_bytes_ + t.offset;
  }

  // Names of the produced tensors (WithExternalTensors) made so far: what a
  // caller has actually read of them.
  std::vector<std::string> ProducedTensors() const;

  // The whole file.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Bytes before the (aligned) tensor data section.
  size_t header_bytes() const { return header_bytes_; }
  // general.alignment, or 32.
  size_t alignment() const { return alignment_; }

 private:
  class Parser;  // gguf_parser.cc

  // One metadata value as located in the file. Scalars are decoded at parse
  // time; arrays and strings are kept as byte ranges into the file and decoded
  // on access (they were fully validated during parsing).
  struct Value {
    GgufValueType type = GgufValueType::kUint8;
    uint64_t scalar_bits = 0;  // little-endian payload of a numeric/bool scalar
    std::string_view str;      // kString
    GgufValueType elem_type = GgufValueType::kUint8;  // kArray
    uint64_t count = 0;                               // kArray
    std::string_view payload;                         // kArray element bytes
  };
  struct Entry {
    std::string key;
    Value value;
  };

  explicit GgufFile(std::string path) : path_(std::move(path)) {}
  // Parses data_[0, size_) into the members below (gguf_parser.cc).
  absl::Status Parse();

  absl::StatusOr<const Value*> Lookup(std::string_view key) const;
  // The bytes of a produced tensor, made on first use.
  const uint8_t* Produce(const GgufTensorInfo& t) const;
  absl::Status TypeMismatch(std::string_view key, const char* expected, const Value& v) const;

  struct AlignedDelete {
    void operator()(uint8_t* p) const;
  };

  std::string path_;
  std::unique_ptr<MappedFile> mapping_;              // set by Open
  std::unique_ptr<uint8_t[], AlignedDelete> owned_;  // set by FromBuffer
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;

  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t header_bytes_ = 0;
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, size_t> entry_index_;
  std::vector<GgufTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;

  // WithExternalTensors only.
  std::shared_ptr<const void> keep_alive_;
  std::vector<std::function<void(uint8_t*)>> producers_;
  mutable absl::Mutex produce_mu_;
  mutable std::vector<std::unique_ptr<uint8_t[]>> produced_ ABSL_GUARDED_BY(produce_mu_);
};

}  // namespace tessera

#endif  // TESSERA_COMMON_GGUF_GGUF_FILE_H_
