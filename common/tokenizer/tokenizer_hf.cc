#include "common/tokenizer/tokenizer_hf.h"

#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "common/tokenizer/nfc.h"
#include "common/tokenizer/spm_bpe.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using Json = nlohmann::json;

// Patterns as Hugging Face tokenizer.json files spell them, and the
// llama.cpp pre-tokenizer (tokenizer.ggml.pre) that splits text the same way.
constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kMetaspace = "\xE2\x96\x81";
// Ids beyond this are surely corrupt; it bounds the token table we allocate.
constexpr int64_t kMaxTokenId = 1 << 24;

// Parses one file, keeping its path for error messages.
struct JsonFile {
  std::string path;
  Json root;

  absl::Status Error(absl::StatusCode code, const std::string& key, const std::string& what) const {
    return absl::Status(code, absl::StrCat(path, ": ", key, " ", what));
  }
  absl::Status Invalid(const std::string& key, const std::string& what) const {
    return Error(absl::StatusCode::kInvalidArgument, key, what);
  }
  absl::Status Unsupported(const std::string& key, const std::string& what) const {
    return Error(absl::StatusCode::kUnimplemented, key, what);
  }
};

absl::StatusOr<JsonFile> LoadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  JsonFile file{path, {}};
  try {
    file.root = Json::parse(buffer.str());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", e.what()));
  }
  if (!file.root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": top level is not a JSON object"));
  }
  return file;
}

// A string member: nullopt if absent or null, an error if another type.
absl::StatusOr<std::optional<std::string>> OptionalString(const JsonFile& f, const Json& obj,
                                                          const std::string& key,
                                                          const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return f.Invalid(path, "is not a string");
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<std::optional<bool>> OptionalBool(const JsonFile& f, const Json& obj,
                                                 const std::string& key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return f.Invalid(path, "is not a boolean");
  return std::optional<bool>(it->get<bool>());
}

std::string TypeOf(const Json& obj) {
  auto it = obj.find("type");
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// Builds the id -> text table from model.vocab and added_tokens.
absl::Status ReadVocab(const JsonFile& f, const Json& model, TokenizerData* data) {
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end()) return f.Invalid("model.vocab", "is missing");
  if (!vocab_it->is_object()) return f.Invalid("model.vocab", "is not an object");
  std::vector<std::optional<std::string>> texts;
  auto place = [&](const std::string& key, const std::string& text,
                   const Json& id_json) -> absl::Status {
    if (!id_json.is_number_integer()) return f.Invalid(key, "id is not an integer");
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id > kMaxTokenId) {
      return f.Invalid(key, absl::StrCat("id ", id, " is out of range [0, ", kMaxTokenId, "]"));
    }
    if (static_cast<size_t>(id) >= texts.size()) texts.resize(id + 1);
    if (texts[id].has_value() && *texts[id] != text) {
      return f.Invalid(key, absl::StrCat("id ", id, " is already used by token '", *texts[id],
                                         "'"));
    }
    texts[id] = text;
    return absl::OkStatus();
  };
  for (const auto& [text, id] : vocab_it->items()) {
    RETURN_IF_ERROR(place(absl::StrCat("model.vocab['", text, "']"), text, id));
  }
  std::vector<std::pair<int64_t, int32_t>> added;  // id, TokenType
  auto added_it = f.root.find("added_tokens");
  if (added_it != f.root.end() && !added_it->is_null()) {
    if (!added_it->is_array()) return f.Invalid("added_tokens", "is not an array");
    for (size_t i = 0; i < added_it->size(); ++i) {
      const Json& t = (*added_it)[i];
      const std::string key = absl::StrCat("added_tokens[", i, "]");
      if (!t.is_object()) return f.Invalid(key, "is not an object");
      ASSIGN_OR_RETURN(auto content, OptionalString(f, t, "content", key + ".content"));
      if (!content.has_value()) return f.Invalid(key + ".content", "is missing");
      auto id_it = t.find("id");
      if (id_it == t.end()) return f.Invalid(key + ".id", "is missing");
      for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
        ASSIGN_OR_RETURN(auto value, OptionalBool(f, t, flag, absl::StrCat(key, ".", flag)));
        if (value.value_or(false)) {
          return f.Unsupported(absl::StrCat(key, ".", flag), "= true is not supported");
        }
      }
      ASSIGN_OR_RETURN(auto special, OptionalBool(f, t, "special", key + ".special"));
      RETURN_IF_ERROR(place(key, *content, *id_it));
      added.emplace_back(id_it->get<int64_t>(), static_cast<int32_t>(
          special.value_or(false) ? TokenType::kControl : TokenType::kUserDefined));
    }
  }
  if (texts.empty()) return f.Invalid("model.vocab", "is empty");
  data->tokens.resize(texts.size());
  data->token_types.assign(texts.size(), static_cast<int32_t>(TokenType::kNormal));
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].has_value()) {
      data->tokens[i] = *texts[i];
    } else {
      data->token_types[i] = static_cast<int32_t>(TokenType::kUnused);  // a hole in the ids
    }
  }
  for (const auto& [id, type] : added) data->token_types[id] = type;
  return absl::OkStatus();
}

absl::Status ReadMerges(const JsonFile& f, const Json& model, TokenizerData* data) {
  auto it = model.find("merges");
  if (it == model.end()) return f.Invalid("model.merges", "is missing");
  if (!it->is_array()) return f.Invalid("model.merges", "is not an array");
  absl::flat_hash_map<std::string, int32_t> ids;
  for (size_t i = 0; i < data->tokens.size(); ++i) ids.emplace(data->tokens[i], i);
  data->merges.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    const std::string key = absl::StrCat("model.merges[", i, "]");
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) return f.Invalid(key, "is not two tokens split by a space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
      // TokenizerData keeps merges as "left right", split at the first space.
      if (left.find(' ') != std::string::npos) {
        return f.Unsupported(key, "has a left token containing a space");
      }
    } else {
      return f.Invalid(key, "is neither \"a b\" nor [\"a\", \"b\"]");
    }
    for (const std::string* part : {&left, &right}) {
      if (!ids.contains(*part)) {
        return f.Invalid(key, absl::StrCat("names unknown token '", *part, "'"));
      }
    }
    if (!ids.contains(left + right)) {
      return f.Invalid(key, absl::StrCat("merges into '", left, right,
                                         "', which is not in the vocabulary"));
    }
    data->merges.push_back(absl::StrCat(left, " ", right));
  }
  return absl::OkStatus();
}

// The pre_tokenizer of a byte-level BPE -> tokenizer.ggml.pre.
absl::StatusOr<std::string> ByteLevelPreName(const JsonFile& f, const Json& pre) {
  auto check_byte_level = [&](const Json& bl, const std::string& key,
                              bool want_regex) -> absl::Status {
    ASSIGN_OR_RETURN(auto prefix, OptionalBool(f, bl, "add_prefix_space",
                                               absl::StrCat(key, ".add_prefix_space")));
    if (prefix.value_or(false)) return f.Unsupported(key, "add_prefix_space = true is not supported");
    ASSIGN_OR_RETURN(auto regex, OptionalBool(f, bl, "use_regex", absl::StrCat(key, ".use_regex")));
    if (regex.value_or(true) != want_regex) {
      return f.Unsupported(key, absl::StrCat("use_regex = ", !want_regex ? "true" : "false",
                                             " is not supported in this position"));
    }
    return absl::OkStatus();
  };
  const std::string type = TypeOf(pre);
  if (type == "ByteLevel") {
    RETURN_IF_ERROR(check_byte_level(pre, "pre_tokenizer", true));
    return std::string("gpt-2");
  }
  if (type != "Sequence") {
    return f.Unsupported("pre_tokenizer", absl::StrCat("type '", type, "' is not supported"));
  }
  auto list = pre.find("pretokenizers");
  if (list == pre.end() || !list->is_array() || list->size() != 2 || !(*list)[0].is_object() ||
      !(*list)[1].is_object()) {
    return f.Unsupported("pre_tokenizer.pretokenizers",
                         "is not one of the supported two-step sequences");
  }
  const Json& first = (*list)[0];
  const Json& second = (*list)[1];
  const std::string first_type = TypeOf(first);
  if (first_type == "Digits") {
    ASSIGN_OR_RETURN(auto individual, OptionalBool(f, first, "individual_digits",
                                                   "pre_tokenizer.pretokenizers[0].individual_digits"));
    if (!individual.value_or(false) || TypeOf(second) != "ByteLevel") {
      return f.Unsupported("pre_tokenizer.pretokenizers",
                           "Digits is supported only with individual_digits, before ByteLevel");
    }
    RETURN_IF_ERROR(check_byte_level(second, "pre_tokenizer.pretokenizers[1]", true));
    return std::string("smollm");
  }
  if (first_type != "Split" || TypeOf(second) != "ByteLevel") {
    return f.Unsupported("pre_tokenizer.pretokenizers",
                         absl::StrCat("[", first_type, ", ", TypeOf(second),
                                      "] is not a supported sequence"));
  }
  RETURN_IF_ERROR(check_byte_level(second, "pre_tokenizer.pretokenizers[1]", false));
  ASSIGN_OR_RETURN(auto behavior, OptionalString(f, first, "behavior",
                                                 "pre_tokenizer.pretokenizers[0].behavior"));
  ASSIGN_OR_RETURN(auto invert, OptionalBool(f, first, "invert",
                                             "pre_tokenizer.pretokenizers[0].invert"));
  if (behavior.value_or("Isolated") != "Isolated" || invert.value_or(false)) {
    return f.Unsupported("pre_tokenizer.pretokenizers[0]",
                         "Split is supported only with behavior Isolated, invert false");
  }
  auto pattern = first.find("pattern");
  if (pattern == first.end() || !pattern->is_object() || !pattern->contains("Regex") ||
      !(*pattern)["Regex"].is_string()) {
    return f.Unsupported("pre_tokenizer.pretokenizers[0].pattern", "is not a {\"Regex\": ...}");
  }
  const std::string regex = (*pattern)["Regex"].get<std::string>();
  if (regex == kGpt2Pattern) return std::string("gpt-2");
  if (regex == kLlama3Pattern) return std::string("llama-bpe");
  if (regex == kQwen2Pattern) return std::string("qwen2");
  return f.Unsupported("pre_tokenizer.pretokenizers[0].pattern.Regex",
                       absl::StrCat("'", regex, "' is not a split pattern Tessera implements"));
}

// Fills data->spm from the normalizer / pre_tokenizer / decoder of a
// SentencePiece-style BPE.
absl::Status ReadSpmOptions(const JsonFile& f, const Json& normalizer, const Json& pre,
                            const Json& decoder, TokenizerData* data) {
  using Prefix = TokenizerData::SpmOptions::Prefix;
  auto is_space_replace = [](const Json& n) {
    return TypeOf(n) == "Replace" && n.contains("pattern") && n["pattern"].is_object() &&
           n["pattern"].value("String", "") == " " && n.value("content", "") == kMetaspace;
  };
  if (TypeOf(pre) == "Metaspace") {
    if (pre.value("replacement", std::string(kMetaspace)) != kMetaspace) {
      return f.Unsupported("pre_tokenizer.replacement", "is not \"\xE2\x96\x81\"");
    }
    const std::string scheme = pre.value("prepend_scheme", std::string(
        pre.value("add_prefix_space", true) ? "always" : "never"));
    if (scheme == "always") data->spm.prefix = Prefix::kEveryFragment;
    else if (scheme == "first") data->spm.prefix = Prefix::kFirstFragment;
    else if (scheme == "never") data->spm.prefix = Prefix::kNever;
    else return f.Unsupported("pre_tokenizer.prepend_scheme", absl::StrCat("'", scheme, "'"));
    data->spm.split_words = pre.value("split", true);
    data->spm.prefix_unless_leading_space = true;
    if (!normalizer.is_null()) {
      return f.Unsupported("normalizer", "is not supported together with Metaspace");
    }
  } else if (!pre.is_null()) {
    return f.Unsupported("pre_tokenizer", absl::StrCat("type '", TypeOf(pre),
                                                       "' is not supported with byte_fallback"));
  } else {
    // Sequence[Prepend("▁"), Replace(" ", "▁")], or just the Replace.
    std::vector<Json> steps;
    if (TypeOf(normalizer) == "Sequence" && normalizer.contains("normalizers") &&
        normalizer["normalizers"].is_array()) {
      for (const Json& n : normalizer["normalizers"]) steps.push_back(n);
    } else {
      steps.push_back(normalizer);
    }
    data->spm.prefix = Prefix::kNever;
    bool replaced = false;
    for (const Json& n : steps) {
      if (TypeOf(n) == "Prepend" && n.value("prepend", "") == kMetaspace && !replaced &&
          data->spm.prefix == Prefix::kNever) {
        data->spm.prefix = Prefix::kEveryFragment;
      } else if (is_space_replace(n) && !replaced) {
        replaced = true;
      } else {
        return f.Unsupported("normalizer",
                             absl::StrCat("step '", TypeOf(n), "' is not supported for "
                                          "SentencePiece-style BPE (want Prepend(\"\xE2\x96\x81\"), "
                                          "Replace(\" \", \"\xE2\x96\x81\"))"));
      }
    }
    if (!replaced) return f.Unsupported("normalizer", "does not replace spaces with \xE2\x96\x81");
  }
  // The decoder: Strip(" ", start=1) or Metaspace removes the leading space.
  using LeadingSpace = TokenizerData::SpmOptions::LeadingSpace;
  data->spm.leading_space = LeadingSpace::kKeep;
  std::vector<Json> steps;
  if (TypeOf(decoder) == "Sequence" && decoder.contains("decoders") &&
      decoder["decoders"].is_array()) {
    for (const Json& d : decoder["decoders"]) steps.push_back(d);
  } else if (!decoder.is_null()) {
    steps.push_back(decoder);
  }
  for (const Json& d : steps) {
    if (TypeOf(d) == "Strip" && d.value("start", 0) == 1 && d.value("content", "") == " ") {
      data->spm.leading_space = LeadingSpace::kStripFromText;
    } else if (TypeOf(d) == "Metaspace") {
      data->spm.leading_space = d.value("prepend_scheme", std::string("always")) != "never"
                                    ? LeadingSpace::kStripFromText
                                    : LeadingSpace::kKeep;
    }
  }
  return absl::OkStatus();
}

// A token named by tokenizer_config.json (a string or {"content": ...}).
absl::StatusOr<std::optional<std::string>> ConfigTokenText(const JsonFile& f,
                                                           const std::string& key) {
  auto it = f.root.find(key);
  if (it == f.root.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) return OptionalString(f, *it, "content", key + ".content");
  return f.Invalid(key, "is neither a string nor an object with \"content\"");
}

absl::StatusOr<int64_t> IdOfText(const JsonFile& f, const TokenizerData& data,
                                 const std::string& key, const std::string& text) {
  for (size_t i = 0; i < data.tokens.size(); ++i) {
    if (data.tokens[i] == text) return static_cast<int64_t>(i);
  }
  return f.Invalid(key, absl::StrCat("names '", text, "', which is not in the vocabulary"));
}

// The leading special token of a TemplateProcessing post_processor, if any.
std::optional<std::string> TemplateBosText(const Json& post) {
  if (TypeOf(post) != "TemplateProcessing") return std::nullopt;
  auto single = post.find("single");
  if (single == post.end() || !single->is_array() || single->empty()) return std::nullopt;
  const Json& first = (*single)[0];
  if (!first.is_object() || !first.contains("SpecialToken")) return std::nullopt;
  const Json& token = first["SpecialToken"];
  if (!token.is_object() || !token.contains("id") || !token["id"].is_string()) return std::nullopt;
  return token["id"].get<std::string>();
}

absl::Status ReadConfig(const JsonFile& tok, const std::string& config_path,
                        TokenizerData* data) {
  const Json& post = tok.root.contains("post_processor") ? tok.root["post_processor"] : Json();
  std::optional<std::string> bos = TemplateBosText(post);
  std::optional<std::string> eos;
  std::optional<bool> add_bos;
  if (bos.has_value()) add_bos = true;
  if (!config_path.empty()) {
    ASSIGN_OR_RETURN(JsonFile config, LoadJson(config_path));
    ASSIGN_OR_RETURN(auto config_bos, ConfigTokenText(config, "bos_token"));
    ASSIGN_OR_RETURN(eos, ConfigTokenText(config, "eos_token"));
    if (config_bos.has_value()) bos = config_bos;
    ASSIGN_OR_RETURN(auto config_add_bos,
                     OptionalBool(config, config.root, "add_bos_token", "add_bos_token"));
    if (config_add_bos.has_value()) add_bos = config_add_bos;
    ASSIGN_OR_RETURN(data->add_eos,
                     OptionalBool(config, config.root, "add_eos_token", "add_eos_token"));
    auto templ = config.root.find("chat_template");
    if (templ != config.root.end() && !templ->is_null()) {
      if (templ->is_string()) {
        data->chat_template = templ->get<std::string>();
      } else if (templ->is_array()) {
        // [{"name": ..., "template": ...}]: the "default" one.
        for (const Json& t : *templ) {
          if (t.is_object() && t.value("name", "") == "default" && t.contains("template") &&
              t["template"].is_string()) {
            data->chat_template = t["template"].get<std::string>();
          }
        }
      } else {
        return config.Invalid("chat_template", "is neither a string nor a list");
      }
    }
    if (bos.has_value()) {
      ASSIGN_OR_RETURN(data->ids.bos, IdOfText(config, *data, "bos_token", *bos));
    }
    if (eos.has_value()) {
      ASSIGN_OR_RETURN(data->ids.eos, IdOfText(config, *data, "eos_token", *eos));
    }
  } else if (bos.has_value()) {
    ASSIGN_OR_RETURN(data->ids.bos, IdOfText(tok, *data, "post_processor.single[0]", *bos));
  }
  // Explicitly none, so that the Tokenizer applies no GGUF-style default.
  if (!data->ids.bos.has_value()) data->ids.bos = -1;
  if (!data->ids.eos.has_value()) data->ids.eos = -1;
  data->add_bos = add_bos.value_or(false);
  if (!data->add_eos.has_value()) data->add_eos = false;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerData> ReadHfTokenizerData(const std::string& tokenizer_json_path,
                                                  const std::string& tokenizer_config_json_path) {
  ASSIGN_OR_RETURN(JsonFile f, LoadJson(tokenizer_json_path));
  TokenizerData data;
  data.source = tokenizer_json_path;
  data.detect_special_by_name = false;
  auto model_it = f.root.find("model");
  if (model_it == f.root.end()) return f.Invalid("model", "is missing");
  if (!model_it->is_object()) return f.Invalid("model", "is not an object");
  const Json& model = *model_it;
  const std::string type = TypeOf(model);
  if (!type.empty() && type != "BPE") {
    return f.Unsupported("model.type", absl::StrCat("'", type, "' is not supported (only BPE)"));
  }
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      return f.Unsupported(absl::StrCat("model.", key), "is set; not supported");
    }
  }
  RETURN_IF_ERROR(ReadVocab(f, model, &data));
  RETURN_IF_ERROR(ReadMerges(f, model, &data));
  ASSIGN_OR_RETURN(auto byte_fallback, OptionalBool(f, model, "byte_fallback", "model.byte_fallback"));
  ASSIGN_OR_RETURN(data.ignore_merges, OptionalBool(f, model, "ignore_merges", "model.ignore_merges"));
  if (!data.ignore_merges.has_value()) data.ignore_merges = false;

  const Json null_json;
  auto member = [&](const char* key) -> const Json& {
    auto it = f.root.find(key);
    return it == f.root.end() ? null_json : *it;
  };
  const Json& normalizer = member("normalizer");
  const Json& pre = member("pre_tokenizer");
  if (byte_fallback.value_or(false)) {
    data.model = "spm-bpe";
    RETURN_IF_ERROR(ReadSpmOptions(f, normalizer, pre, member("decoder"), &data));
    ASSIGN_OR_RETURN(auto unk, OptionalString(f, model, "unk_token", "model.unk_token"));
    if (unk.has_value()) {
      ASSIGN_OR_RETURN(data.ids.unk, IdOfText(f, data, "model.unk_token", *unk));
    }
    absl::flat_hash_map<std::string, int> byte_texts;
    for (int b = 0; b < 256; ++b) byte_texts.emplace(SpmByteTokenText(static_cast<uint8_t>(b)), b);
    for (size_t i = 0; i < data.tokens.size(); ++i) {
      if (byte_texts.contains(data.tokens[i]) &&
          data.token_types[i] == static_cast<int32_t>(TokenType::kNormal)) {
        data.token_types[i] = static_cast<int32_t>(TokenType::kByte);
      }
    }
  } else {
    if (pre.is_null()) return f.Unsupported("pre_tokenizer", "is missing (null)");
    ASSIGN_OR_RETURN(data.pre, ByteLevelPreName(f, pre));
    if (TypeOf(normalizer) == "NFC") {
      if (!NfcAvailable()) {
        return f.Unsupported("normalizer", "NFC needs ICU, which this build does not have");
      }
      data.nfc = true;
    } else if (!normalizer.is_null()) {
      return f.Unsupported("normalizer", absl::StrCat("type '", TypeOf(normalizer),
                                                      "' is not supported for byte-level BPE"));
    }
  }
  RETURN_IF_ERROR(ReadConfig(f, tokenizer_config_json_path, &data));
  return data;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfFiles(
    const std::string& tokenizer_json_path, const std::string& tokenizer_config_json_path) {
  ASSIGN_OR_RETURN(TokenizerData data,
                   ReadHfTokenizerData(tokenizer_json_path, tokenizer_config_json_path));
  return FromData(data);
}

}  // namespace tessera
