// FromHfFiles in builds without nlohmann_json (the bare engine build): a
// clear refusal instead of a link error.
#include "absl/status/status.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_hf.h"

namespace tessera {

absl::StatusOr<TokenizerData> ReadHfTokenizerData(const std::string& tokenizer_json_path,
                                                  const std::string& /*config_path*/) {
  return absl::UnimplementedError(
      tokenizer_json_path +
      ": this build has no JSON parser (nlohmann_json was not found at configure time)");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfFiles(
    const std::string& tokenizer_json_path, const std::string& tokenizer_config_json_path) {
  absl::StatusOr<TokenizerData> data =
      ReadHfTokenizerData(tokenizer_json_path, tokenizer_config_json_path);
  if (!data.ok()) return data.status();
  return FromData(*data);
}

}  // namespace tessera
