// ReadTokenizerData / Tokenizer::FromGguf: the tokenizer.* GGUF metadata.
#include <optional>

#include "absl/status/status.h"
#include "common/gguf/gguf_file.h"
#include "base/status_macros.h"
#include "common/tokenizer/tokenizer.h"

namespace tessera {
namespace {

// Reads an optional key: absent leaves `out` unset; present but of the wrong
// type is an error (already naming the file and key).
absl::Status ReadOptionalId(const GgufFile& file, const std::string& key,
                            std::optional<int64_t>* out) {
  if (!file.Has(key)) return absl::OkStatus();
  // Signed: a converter may store -1 for "none", which llama.cpp ignores.
  ASSIGN_OR_RETURN(int64_t value, file.GetInt(key));
  if (value >= 0) *out = value;
  return absl::OkStatus();
}

absl::Status ReadOptionalBool(const GgufFile& file, const std::string& key,
                              std::optional<bool>* out) {
  if (!file.Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, file.GetBool(key));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  ASSIGN_OR_RETURN(TokenizerData data, ReadTokenizerData(file));
  return FromData(data);
}

absl::StatusOr<TokenizerData> ReadTokenizerData(const GgufFile& file) {
  TokenizerData data;
  data.source = file.path();
  ASSIGN_OR_RETURN(data.model, file.GetString("tokenizer.ggml.model"));
  const bool sentencepiece = data.model == "llama";
  if (data.model != "gpt2" && !sentencepiece) {
    // Let FromData say the model is unsupported, rather than complain here
    // about keys only BPE vocabularies have.
    return data;
  }
  if (file.Has("tokenizer.ggml.pre")) {
    ASSIGN_OR_RETURN(data.pre, file.GetString("tokenizer.ggml.pre"));
  }
  ASSIGN_OR_RETURN(data.tokens, file.GetStringArray("tokenizer.ggml.tokens"));
  if (file.Has("tokenizer.ggml.token_type")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> types, file.GetIntArray("tokenizer.ggml.token_type"));
    data.token_types.reserve(types.size());
    for (int64_t t : types) {
      // Out-of-range types become "undefined", as unknown types do.
      data.token_types.push_back(t >= 0 && t <= 6 ? static_cast<int32_t>(t) : 0);
    }
  }
  if (sentencepiece) {
    // llama.cpp treats missing scores as all zero.
    if (file.Has("tokenizer.ggml.scores")) {
      ASSIGN_OR_RETURN(data.scores, file.GetFloatArray("tokenizer.ggml.scores"));
    }
    std::optional<bool> add_space_prefix;
    RETURN_IF_ERROR(
        ReadOptionalBool(file, "tokenizer.ggml.add_space_prefix", &add_space_prefix));
    using Spm = TokenizerData::SpmOptions;
    const bool prefix = add_space_prefix.value_or(true);
    data.spm.prefix = prefix ? Spm::Prefix::kEveryFragment : Spm::Prefix::kNever;
    data.spm.prefix_unless_leading_space = false;
    data.spm.split_words = false;
    data.spm.leading_space =
        prefix ? Spm::LeadingSpace::kStripFromFirstToken : Spm::LeadingSpace::kKeep;
  } else {
    ASSIGN_OR_RETURN(data.merges, file.GetStringArray("tokenizer.ggml.merges"));
  }

  TokenizerData::SpecialIds& ids = data.ids;
  const std::pair<const char*, std::optional<int64_t>*> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &ids.bos},
      {"tokenizer.ggml.eos_token_id", &ids.eos},
      {"tokenizer.ggml.eot_token_id", &ids.eot},
      {"tokenizer.ggml.eom_token_id", &ids.eom},
      {"tokenizer.ggml.unknown_token_id", &ids.unk},
      {"tokenizer.ggml.seperator_token_id", &ids.sep},  // sic: the GGUF key's spelling
      {"tokenizer.ggml.padding_token_id", &ids.pad},
      {"tokenizer.ggml.fim_pre_token_id", &ids.fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &ids.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &ids.fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &ids.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &ids.fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &ids.fim_sep},
  };
  for (const auto& [key, out] : id_keys) RETURN_IF_ERROR(ReadOptionalId(file, key, out));
  RETURN_IF_ERROR(ReadOptionalBool(file, "tokenizer.ggml.add_bos_token", &data.add_bos));
  RETURN_IF_ERROR(ReadOptionalBool(file, "tokenizer.ggml.add_eos_token", &data.add_eos));
  if (file.Has("tokenizer.chat_template")) {
    ASSIGN_OR_RETURN(data.chat_template, file.GetString("tokenizer.chat_template"));
  }
  return data;
}

}  // namespace tessera
