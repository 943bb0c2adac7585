// The weights of a Hugging Face model directory: one `model.safetensors`, or
// shards listed by `model.safetensors.index.json` ({"weight_map": {tensor:
// shard file name}}).
//
// Open() opens and validates every shard and checks the index against them, so
// that a lookup afterwards cannot fail halfway through loading a model: a shard
// the index names that is missing is NOT_FOUND naming the shard and a tensor
// mapped to it; a tensor the index maps to a shard that lacks it is DATA_LOSS
// naming both; a malformed index is DATA_LOSS naming the index and the key.
// When there is an index it is authoritative: only the tensors it lists are
// visible, each in the shard it names.
//
// Immutable after Open and safe to read from many threads at once; tensor data
// points into the shards' mappings and lives as long as the model.
#ifndef TESSERA_COMMON_SAFETENSORS_SAFETENSORS_MODEL_H_
#define TESSERA_COMMON_SAFETENSORS_SAFETENSORS_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/safetensors/safetensors_file.h"

namespace tessera {

class SafetensorsModel {
 public:
  struct TensorRef {
    const SafetensorsFile* file = nullptr;
    const SafetensorsTensorInfo* info = nullptr;
    const uint8_t* data() const { return file->TensorData(*info); }
  };

  // `dir` is a directory holding model.safetensors.index.json (preferred) or
  // model.safetensors; NOT_FOUND when it holds neither.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(const std::string& dir);

  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;

  // nullptr when the model has no such tensor.
  const TensorRef* FindTensor(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;
  size_t num_tensors() const { return tensors_.size(); }
  // The shard files, in the order of their first appearance in the (sorted)
  // index, or the single file.
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

 private:
  SafetensorsModel() = default;

  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  absl::flat_hash_map<std::string, TensorRef> tensors_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_SAFETENSORS_SAFETENSORS_MODEL_H_
