// A parsed, validated Hugging Face safetensors file.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then
// the tensor data. The JSON maps each tensor name to {"dtype", "shape",
// "data_offsets": [begin, end]} (offsets relative to the start of the data),
// plus an optional "__metadata__" object of string values.
//
// Open() maps the file and checks *all* of the structure up front, so every
// later accessor is a lookup that cannot walk off the mapping: the header fits
// in the file; every entry is an object with a string dtype, an array of
// non-negative integer dims and two integer offsets; begin <= end <= data size;
// end - begin equals product(shape) * dtype size (computed without overflow);
// no two tensors' byte ranges overlap (gaps are tolerated, unlike the
// reference loader, since they are harmless to us); names are unique. Corruption is
// DATA_LOSS naming the file and the tensor or key; a well-formed tensor of a
// dtype we cannot compute with (anything but F32/F16/BF16) is UNIMPLEMENTED
// naming the tensor and the dtype.
//
// Tensor data is never copied: TensorData() points into the mapping, which
// lives as long as the SafetensorsFile. Note that safetensors does not align
// tensor data; callers must not assume more than byte alignment. Immutable
// after construction and safe to read from many threads at once.
#ifndef TESSERA_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_
#define TESSERA_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/mapped_file.h"

namespace tessera {

enum class SafetensorsDtype { kF32, kF16, kBF16 };

// "F32", "F16", "BF16" (as spelled in the file).
const char* SafetensorsDtypeName(SafetensorsDtype dtype);
// Bytes per element.
size_t SafetensorsDtypeSize(SafetensorsDtype dtype);

struct SafetensorsTensorInfo {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;  // row-major, outermost dimension first
  uint64_t begin = 0;          // from the start of the data section
  uint64_t end = 0;

  uint64_t size_bytes() const { return end - begin; }
  int64_t num_elements() const;  // 1 for a scalar (empty shape)
};

class SafetensorsFile {
 public:
  // Maps `path` and parses it; the tensor data stays in the mapping.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  // Parses a copy of `bytes`, allocated at exactly their size so sanitizers
  // catch any read past the end. `name` stands in for the path in errors.
  // Meant for tests and fuzzing.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(std::string name,
                                                                     std::string bytes);

  ~SafetensorsFile() = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }

  // Tensors, sorted by name.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* FindTensor(std::string_view name) const;
  // The first byte of `t`'s data; `t` must be one of this file's tensors.
  const uint8_t* TensorData(const SafetensorsTensorInfo& t) const {
    return data_ + data_start_ + t.begin;
  }

  // The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The whole file.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // 8 + header length: where the data section starts.
  size_t data_start() const { return data_start_; }

 private:
  explicit SafetensorsFile(std::string path) : path_(std::move(path)) {}
  absl::Status Parse();

  std::string path_;
  std::unique_ptr<MappedFile> mapping_;  // set by Open
  std::unique_ptr<uint8_t[]> owned_;     // set by FromBuffer
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t data_start_ = 0;

  std::vector<SafetensorsTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_
