#include "common/safetensors/model_source.h"

#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/safetensors/hf_gguf_view.h"

namespace tessera {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

bool IsModelDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path) {
  if (IsModelDirectory(path)) return OpenHfDirectoryAsGguf(path);
  return GgufFile::Open(path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> OpenModelTokenizer(const std::string& path,
                                                              const GgufFile& file) {
  if (!IsModelDirectory(path)) return Tokenizer::FromGguf(file);
  const std::string json = path + "/tokenizer.json";
  if (!IsRegularFile(json)) {
    return absl::NotFoundError(absl::StrCat(path, ": no tokenizer.json in the model directory"));
  }
  const std::string config = path + "/tokenizer_config.json";
  return Tokenizer::FromHfFiles(json, IsRegularFile(config) ? config : std::string());
}

}  // namespace tessera
