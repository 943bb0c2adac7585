// A random model written by the generator (random_model.h) and loaded as
// the CPU engine loads a file, for the CUDA runner's tests.
#ifndef TESSERA_TESTS_CUDA_LOADED_MODEL_H_
#define TESSERA_TESTS_CUDA_LOADED_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/model_weights.h"
#include "tests/cuda/random_model.h"

namespace tessera::cuda_test {

struct LoadedModel {
  std::unique_ptr<GgufFile> file;
  ModelConfig config;
  std::unique_ptr<ModelWeights> weights;
};

// Writes `shape` in `type` to `path` (seed 42), maps it and loads every
// layer; the file is unlinked at once (the mapping keeps the data).
absl::StatusOr<LoadedModel> WriteAndLoad(const testing::RandomModelShape& shape, GgmlType type,
                                         const std::string& path);

// One temporary directory per program for the model files.
std::string& ModelDir();

}  // namespace tessera::cuda_test

#endif  // TESSERA_TESTS_CUDA_LOADED_MODEL_H_
