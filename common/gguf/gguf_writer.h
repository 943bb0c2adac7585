// Builds GGUF v3 files from our own code: tiny random-weight models for tests,
// and fixtures that the parser must accept (or, once patched, reject).
//
// Metadata keys keep the order in which they were first set; setting a key
// again replaces its value in place. Tensors are laid out in the order added,
// each at an offset aligned to 32 bytes, or to general.alignment if that was
// set with SetUint32 to a power of two. (Setting it to anything else leaves the
// layout at the previous alignment, which yields a file the parser rejects;
// tests use that on purpose.)
//
// Tensor data is either given at AddTensor or produced lazily: WriteFile then
// calls each producer as it reaches that tensor and writes its bytes before
// the next is made, so a file larger than memory (a 16 GB random 8B model)
// needs one tensor's bytes at a time.
//
// A GgufWriter is a plain value with no internal locking; use it from one
// thread at a time.
#ifndef TESSERA_COMMON_GGUF_GGUF_WRITER_H_
#define TESSERA_COMMON_GGUF_GGUF_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/gguf/ggml_type.h"

namespace tessera {

class GgufWriter {
 public:
  void SetString(const std::string& key, const std::string& value);
  void SetUint32(const std::string& key, uint32_t value);
  void SetUint64(const std::string& key, uint64_t value);
  void SetInt32(const std::string& key, int32_t value);
  void SetFloat32(const std::string& key, float value);
  void SetBool(const std::string& key, bool value);
  void SetStringArray(const std::string& key, const std::vector<std::string>& values);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& values);
  void SetFloat32Array(const std::string& key, const std::vector<float>& values);

  // Adds a tensor whose data is `bytes`, already in `type`'s layout (see
  // tensor_encoding.h). `shape` is ne0 first, 1 to 4 positive dimensions, and
  // ne0 must be a multiple of the type's block size. INVALID_ARGUMENT naming
  // the tensor if any of that, or the byte count, is wrong; ALREADY_EXISTS if
  // the name was used.
  absl::Status AddTensor(const std::string& name, std::vector<int64_t> shape, GgmlType type,
                         std::string bytes);
  // As above, but the bytes come from `produce` when the file is written
  // (each time it is). The same checks apply to the shape at once and to the
  // produced byte count when it is called.
  using Producer = std::function<std::string()>;
  absl::Status AddTensor(const std::string& name, std::vector<int64_t> shape, GgmlType type,
                         Producer produce);

  // The complete file.
  std::string Serialize() const;
  // Writes the file to `path`, replacing any file there, one tensor at a time.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType type;
    uint64_t size = 0;
    std::string bytes;  // unless produce is set
    Producer produce;
  };

  // The byte count `shape` and `type` need; INVALID_ARGUMENT naming `name`.
  absl::StatusOr<uint64_t> CheckTensor(const std::string& name,
                                       const std::vector<int64_t>& shape, GgmlType type) const;
  // Everything before the first tensor's data, padded to the alignment.
  std::string Header() const;
  // The tensor's bytes: given, or produced and checked against its size.
  absl::StatusOr<std::string> Bytes(const Tensor& t) const;

  // `encoded` is the u32 value type followed by the value.
  void Set(const std::string& key, std::string encoded);

  std::vector<std::pair<std::string, std::string>> metadata_;
  absl::flat_hash_map<std::string, size_t> metadata_index_;
  std::vector<Tensor> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
  uint64_t alignment_ = 32;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_GGUF_GGUF_WRITER_H_
