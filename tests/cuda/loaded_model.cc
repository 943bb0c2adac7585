#include "tests/cuda/loaded_model.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace tessera::cuda_test {
namespace {

std::string TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/tessera_cuda_XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return "/tmp";
  return templ;
}

}  // namespace

absl::StatusOr<LoadedModel> WriteAndLoad(const testing::RandomModelShape& shape, GgmlType type,
                                         const std::string& path) {
  absl::Status s = testing::WriteRandomModel(shape, type, 42, path);
  if (!s.ok()) {
    std::remove(path.c_str());
    return s;
  }
  LoadedModel m;
  auto file = GgufFile::Open(path);
  // The mapping keeps the data; unlinking now leaves nothing behind, even
  // when a check fails or the program stops early (the files reach gigabytes).
  std::remove(path.c_str());
  if (!file.ok()) return file.status();
  m.file = *std::move(file);
  auto config = ModelConfigFromGguf(*m.file);
  if (!config.ok()) return config.status();
  m.config = *config;
  auto weights = ModelWeights::Load(*m.file, m.config, LayerRange{0, m.config.n_layer});
  if (!weights.ok()) return weights.status();
  m.weights = *std::move(weights);
  return m;
}

std::string& ModelDir() {
  static std::string dir = TempDir();
  return dir;
}

}  // namespace tessera::cuda_test
