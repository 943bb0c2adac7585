#include "common/safetensors/model_source.h"

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/safetensors/hf_gguf_view.h"
#include "base/status_macros.h"
#include "common/tokenizer/tokenizer_hf.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A JSON object file, or INVALID_ARGUMENT / NOT_FOUND naming it.
absl::StatusOr<nlohmann::json> ReadJsonObject(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  return j;
}

// The eos_token_id of a generation_config.json or config.json (an id or a
// list of ids), each checked against a vocabulary of `vocab_size` tokens;
// empty when the file or the key is absent.
absl::StatusOr<std::vector<int64_t>> ReadEosIds(const std::string& path, size_t vocab_size) {
  std::vector<int64_t> ids;
  if (!IsRegularFile(path)) return ids;
  ASSIGN_OR_RETURN(const nlohmann::json j, ReadJsonObject(path));
  const auto it = j.find("eos_token_id");
  if (it == j.end() || it->is_null()) return ids;
  const auto bad = [&](const std::string& where, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": eos_token_id", where, " ", what));
  };
  const bool is_list = it->is_array();
  if (!is_list && !it->is_number_integer()) {
    return bad("", "must be a token id or a list of token ids");
  }
  const nlohmann::json list = is_list ? *it : nlohmann::json::array({*it});
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& v = list[i];
    const std::string where = is_list ? absl::StrCat("[", i, "]") : "";
    if (!v.is_number_integer()) return bad(where, "must be an integer");
    // An unsigned value past INT64_MAX comes out negative and is caught too.
    const int64_t id = v.get<int64_t>();
    if (id < 0 || static_cast<uint64_t>(id) >= vocab_size) {
      return bad(where, absl::StrCat("= ", v.dump(), " is outside the tokenizer's vocabulary of ",
                                     vocab_size, " tokens"));
    }
    ids.push_back(id);
  }
  return ids;
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
  ASSIGN_OR_RETURN(TokenizerData data,
                   ReadHfTokenizerData(json, IsRegularFile(config) ? config : std::string()));
  // Instruct models often stop at more than the tokenizer's EOS (Llama-3's
  // <|eot_id|>); Hugging Face's generate() takes the list from here.
  // Hugging Face's generate() takes the list from generation_config.json, or
  // from config.json when a model ships no generation config.
  const std::string generation = path + "/generation_config.json";
  ASSIGN_OR_RETURN(data.extra_end_of_generation_ids,
                   ReadEosIds(IsRegularFile(generation) ? generation : path + "/config.json",
                              data.tokens.size()));
  return Tokenizer::FromData(data);
}

absl::StatusOr<SamplingDefaults> ModelSamplingDefaults(const std::string& path) {
  SamplingDefaults d;
  const std::string file = path + "/generation_config.json";
  if (!IsModelDirectory(path) || !IsRegularFile(file)) return d;
  ASSIGN_OR_RETURN(const nlohmann::json j, ReadJsonObject(file));
  // Each present key must be a number in the range ValidateSamplingParams
  // accepts; null means absent.
  auto number = [&](const char* key, auto* out) -> absl::Status {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    using T = typename std::decay_t<decltype(*out)>::value_type;
    if (!it->is_number() || (std::is_integral_v<T> && !it->is_number_integer())) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, " = ", it->dump(),
                                                     " is not a ",
                                                     std::is_integral_v<T> ? "integer" : "number"));
    }
    const double v = it->get<double>();
    if (std::is_integral_v<T> && (v < 0 || v > 1e9)) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, " = ", it->dump(),
                                                     " is out of range"));
    }
    *out = static_cast<T>(v);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(number("temperature", &d.temperature));
  RETURN_IF_ERROR(number("top_k", &d.top_k));
  RETURN_IF_ERROR(number("top_p", &d.top_p));
  RETURN_IF_ERROR(number("min_p", &d.min_p));
  RETURN_IF_ERROR(number("repetition_penalty", &d.repetition_penalty));
  if (absl::Status s = ValidateSamplingParams(d.Apply(SamplingParams{})); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", s.message()));
  }
  return d;
}

}  // namespace tessera
