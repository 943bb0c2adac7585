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
// A GgufWriter is a plain value with no internal locking; use it from one
// thread at a time.
#ifndef TESSERA_COMMON_GGUF_GGUF_WRITER_H_
#define TESSERA_COMMON_GGUF_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
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

  // The complete file.
  std::string Serialize() const;
  // Writes Serialize() to `path`, replacing any file there.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType type;
    std::string bytes;
  };

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
