#include "common/tokenizer/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/nfc.h"
#include "common/tokenizer/spm_bpe.h"
#include "common/tokenizer/spm_scores.h"
#include "common/tokenizer/string_view_compat.h"
#include "common/tokenizer/unicode.h"

namespace tessera {
namespace {

// Token attributes, as llama.cpp derives them from token types and texts.
enum : uint8_t {
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
};

uint8_t AttrFromType(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kByte: return kAttrByte;
    default: return 0;  // undefined, or a type this code does not know
  }
}

// Texts llama.cpp recognises by name (llama-vocab.cpp, load()): the first
// token found for each role is promoted to a control token.
using Names = std::initializer_list<std::string_view>;
const Names kEotNames = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                         "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                         "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                         "<end_of_utterance>"};
const Names kEomNames = {"<|eom_id|>"};
const Names kFimPreNames = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                            "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
const Names kFimSufNames = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
                            "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
const Names kFimMidNames = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                            "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
const Names kFimPadNames = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const Names kFimRepNames = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                            "<reponame>"};
const Names kFimSepNames = {"<|file_sep|>"};
// Tokens that end generation whatever their type.
const Names kEndOfGenerationNames = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
    "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
    "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};

bool IsOneOf(std::string_view text, const Names& names) {
  return std::find(names.begin(), names.end(), text) != names.end();
}

// Parses a byte token's "<0xHH>" text.
int ByteTokenValue(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= c - '0';
    else if (c >= 'A' && c <= 'F') value |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') value |= c - 'a' + 10;
    else return -1;
  }
  return value;
}

// Cuts every word that starts with a \p{N} code point (with the Llama-3
// pattern, such a word is a run of one to three of them) into single code
// points.
std::vector<std::string> SplitDigitRuns(std::vector<std::string> words) {
  std::vector<std::string> out;
  out.reserve(words.size());
  for (std::string& word : words) {
    const std::vector<uint32_t> cpts = DecodeUtf8Lenient(word);
    if (cpts.size() < 2 || !(CodepointFlagsOf(cpts[0]) & kCpNumber)) {
      out.push_back(std::move(word));
      continue;
    }
    for (uint32_t cpt : cpts) {
      out.emplace_back();
      AppendUtf8(cpt, &out.back());
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromData(const TokenizerData& data) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  RETURN_IF_ERROR(t->Init(data));
  return t;
}

absl::Status Tokenizer::Init(const TokenizerData& data) {
  source_ = data.source.empty() ? "<tokenizer data>" : data.source;
  if (data.model == "gpt2") {
    model_ = Model::kByteLevel;
  } else if (data.model == "llama") {
    model_ = Model::kSpmScores;
  } else if (data.model == "spm-bpe") {
    model_ = Model::kSpmMerges;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        source_, ": tokenizer.ggml.model '", data.model,
        "' is not supported (only 'gpt2', byte-level BPE, and 'llama', SentencePiece)"));
  }
  spm_ = model_ != Model::kByteLevel;
  spm_options_ = data.spm;
  bool llama3 = false;
  if (!spm_) {
    // Qwen2's pattern differs from Llama-3's only in matching \p{N} one at
    // a time instead of \p{N}{1,3}; no other alternative can start at a
    // digit, so its words are Llama-3's with each digit run cut into single
    // digits.
    single_digits_ = data.pre == "qwen2";
    auto pre = PreTokenizerFromName(single_digits_ ? "llama3" : data.pre);
    if (!pre.ok()) {
      return absl::Status(pre.status().code(),
                          absl::StrCat(source_, ": ", pre.status().message()));
    }
    pre_ = *pre;
    // llama.cpp loads Llama-3 vocabularies with ignore_merges and add_bos.
    llama3 = pre_ == PreTokenizerKind::kLlama3 && !single_digits_;
  }
  ignore_merges_ = data.ignore_merges.value_or(llama3);
  // llama.cpp adds BOS by default for SentencePiece GGUF vocabularies too.
  add_bos_ = data.add_bos.value_or(llama3 || model_ == Model::kSpmScores);
  nfc_ = data.nfc;
  if (nfc_ && !NfcAvailable()) {
    return absl::UnimplementedError(absl::StrCat(
        source_, ": the NFC normalizer needs ICU, which this build does not have"));
  }
  add_eos_ = data.add_eos.value_or(false);
  chat_template_ = data.chat_template;

  if (data.tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": tokenizer.ggml.tokens is empty"));
  }
  if (data.tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": tokenizer.ggml.tokens has ", data.tokens.size(), " entries (too many)"));
  }
  if (!data.token_types.empty() && data.token_types.size() < data.tokens.size()) {
    return absl::DataLossError(absl::StrCat(
        source_, ": tokenizer.ggml.token_type has ", data.token_types.size(),
        " entries for ", data.tokens.size(), " tokens"));
  }
  const int32_t n = static_cast<int32_t>(data.tokens.size());
  texts_.resize(n);
  attrs_.resize(n);
  text_to_id_.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    // llama.cpp keeps empty tokens addressable under a placeholder text.
    texts_[i] = data.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]") : data.tokens[i];
    attrs_[i] = data.token_types.empty() ? static_cast<uint8_t>(kAttrNormal) : AttrFromType(data.token_types[i]);
    text_to_id_.insert_or_assign(texts_[i], i);  // a repeated text maps to its last id
  }
  RETURN_IF_ERROR(InitScores(data));
  std::string encoded;
  for (int b = 0; b < 256; ++b) {
    encoded.clear();
    if (spm_) {
      encoded = SpmByteTokenText(static_cast<uint8_t>(b));
    } else {
      AppendUtf8(ByteToCodepoint(static_cast<uint8_t>(b)), &encoded);
    }
    byte_ids_[b] = Lookup(encoded);
    // llama.cpp's SentencePiece byte fallback also accepts the byte itself
    // as a one-byte token.
    if (byte_ids_[b] < 0 && model_ == Model::kSpmScores) {
      byte_ids_[b] = Lookup(std::string(1, static_cast<char>(b)));
    }
  }
  RETURN_IF_ERROR(BuildMerges(data));
  RETURN_IF_ERROR(ResolveSpecialIds(data));

  for (int32_t i = 0; i < n; ++i) {
    if (attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      partition_order_.push_back(i);
    }
  }
  // Longest first, so that a token containing another wins; ties by id to be
  // deterministic.
  std::stable_sort(partition_order_.begin(), partition_order_.end(),
                   [&](int32_t a, int32_t b) { return texts_[a].size() > texts_[b].size(); });

  pieces_.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    const uint8_t a = attrs_[i];
    if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      pieces_[i] = texts_[i];
    } else if ((a & kAttrNormal) && spm_) {
      pieces_[i] = SpmPieceText(texts_[i]);
    } else if (a & kAttrNormal) {
      ByteDecode(texts_[i], &pieces_[i]);
    } else if (a & kAttrByte) {
      const int v = ByteTokenValue(texts_[i]);
      if (v >= 0) pieces_[i] = std::string(1, static_cast<char>(v));
    }
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::InitScores(const TokenizerData& data) {
  if (model_ != Model::kSpmScores || data.scores.empty()) return absl::OkStatus();
  if (data.scores.size() < texts_.size()) {
    return absl::DataLossError(absl::StrCat(source_, ": tokenizer.ggml.scores has ",
                                            data.scores.size(), " entries for ",
                                            texts_.size(), " tokens"));
  }
  scores_.assign(data.scores.begin(), data.scores.begin() + texts_.size());
  // NaN would break the ordering of merge candidates; such a token merges
  // last.
  for (float& score : scores_) {
    if (std::isnan(score)) score = -std::numeric_limits<float>::infinity();
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::BuildMerges(const TokenizerData& data) {
  for (size_t i = 0; i < data.merges.size(); ++i) {
    const std::string& merge = data.merges[i];
    // llama.cpp splits at the first space after the first byte.
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      return absl::DataLossError(absl::StrCat(source_, ": tokenizer.ggml.merges[", i, "] '",
                                              absl::CHexEscape(merge),
                                              "' is not two tokens separated by a space"));
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const int32_t left_id = Lookup(left);
    const int32_t right_id = Lookup(right);
    if (left_id < 0 || right_id < 0) {
      return absl::DataLossError(absl::StrCat(
          source_, ": tokenizer.ggml.merges[", i, "] '", absl::CHexEscape(merge),
          "' names unknown token '", absl::CHexEscape(ToAbsl(left_id < 0 ? left : right)), "'"));
    }
    const int32_t result = Lookup(absl::StrCat(ToAbsl(left), ToAbsl(right)));
    merges_.Add(left_id, right_id, {static_cast<int32_t>(i), result});
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::ResolveSpecialIds(const TokenizerData& data) {
  const int32_t n = vocab_size();
  // Explicit ids must be in range; missing ones are -1 until defaulted.
  auto resolve = [&](const std::optional<int64_t>& id, std::string_view key,
                     int32_t* out) -> absl::Status {
    *out = -1;
    if (!id.has_value() || *id < 0) return absl::OkStatus();
    if (*id >= n) {
      return absl::DataLossError(absl::StrCat(source_, ": tokenizer.ggml.", ToAbsl(key), " = ", *id,
                                              " is outside the vocabulary of ", n, " tokens"));
    }
    *out = static_cast<int32_t>(*id);
    return absl::OkStatus();
  };
  int32_t eot, eom, unk, sep, pad, fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  RETURN_IF_ERROR(resolve(data.ids.bos, "bos_token_id", &bos_id_));
  RETURN_IF_ERROR(resolve(data.ids.eos, "eos_token_id", &eos_id_));
  RETURN_IF_ERROR(resolve(data.ids.eot, "eot_token_id", &eot));
  RETURN_IF_ERROR(resolve(data.ids.eom, "eom_token_id", &eom));
  RETURN_IF_ERROR(resolve(data.ids.unk, "unknown_token_id", &unk));
  RETURN_IF_ERROR(resolve(data.ids.sep, "seperator_token_id", &sep));
  RETURN_IF_ERROR(resolve(data.ids.pad, "padding_token_id", &pad));
  RETURN_IF_ERROR(resolve(data.ids.fim_pre, "fim_pre_token_id", &fim_pre));
  RETURN_IF_ERROR(resolve(data.ids.fim_suf, "fim_suf_token_id", &fim_suf));
  RETURN_IF_ERROR(resolve(data.ids.fim_mid, "fim_mid_token_id", &fim_mid));
  RETURN_IF_ERROR(resolve(data.ids.fim_pad, "fim_pad_token_id", &fim_pad));
  RETURN_IF_ERROR(resolve(data.ids.fim_rep, "fim_rep_token_id", &fim_rep));
  RETURN_IF_ERROR(resolve(data.ids.fim_sep, "fim_sep_token_id", &fim_sep));
  // llama.cpp's defaults for keys a GGUF file leaves out.
  if (model_ == Model::kByteLevel) {
    if (!data.ids.bos.has_value() && 11 < n) bos_id_ = 11;
    if (!data.ids.eos.has_value() && 11 < n) eos_id_ = 11;
  } else if (model_ == Model::kSpmScores) {
    if (!data.ids.unk.has_value() && 0 < n) unk = 0;
    if (!data.ids.bos.has_value() && 1 < n) bos_id_ = 1;
    if (!data.ids.eos.has_value() && 2 < n) eos_id_ = 2;
  }

  // Roles not given by metadata are found by token text. llama.cpp scans a
  // hash map, so which of several candidates wins is unspecified there; the
  // lowest id wins here.
  struct Role {
    int32_t* id;
    const Names* names;
  };
  const Role roles[] = {{&eot, &kEotNames},         {&eom, &kEomNames},
                        {&fim_pre, &kFimPreNames},  {&fim_suf, &kFimSufNames},
                        {&fim_mid, &kFimMidNames},  {&fim_pad, &kFimPadNames},
                        {&fim_rep, &kFimRepNames},  {&fim_sep, &kFimSepNames}};
  for (const Role& role : roles) {
    if (*role.id >= 0 || !data.detect_special_by_name) continue;
    for (int32_t i = 0; i < n; ++i) {
      if (IsOneOf(texts_[i], *role.names) && text_to_id_.at(texts_[i]) == i) {
        *role.id = i;
        attrs_[i] |= kAttrControl;
        break;
      }
    }
  }

  end_of_generation_.assign(n, false);
  for (int32_t id : {fim_pad, fim_rep, fim_sep}) {
    if (id >= 0) end_of_generation_[id] = true;
  }
  for (const auto& [text, id] : text_to_id_) {
    if (IsOneOf(text, kEndOfGenerationNames) &&
        (data.detect_special_by_name || (attrs_[id] & kAttrControl))) {
      end_of_generation_[id] = true;
      attrs_[id] |= kAttrControl;
    }
    // gpt-oss's structural tokens are always rendered.
    if (text == "<|channel|>" || text == "<|message|>" || text == "<|start|>" ||
        text == "<|constrain|>") {
      attrs_[id] = kAttrUserDefined;
    }
  }
  for (int32_t id : {eos_id_, eot, eom}) {
    if (id >= 0) end_of_generation_[id] = true;
  }
  unk_id_ = unk;
  // Two model-specific exceptions llama.cpp makes to its name list: with
  // <|return|>+<|call|> (or <|calls|>+<|flush|>), <|end|> does not end
  // generation; with <|tool_response>/<|plamo:eos|>, </s> is a normal token.
  auto eog_id_of = [&](std::string_view text) -> int32_t {
    const int32_t id = Lookup(text);
    return id >= 0 && end_of_generation_[id] ? id : -1;
  };
  const int32_t end_id = eog_id_of("<|end|>");
  const bool has_call = eog_id_of("<|call|>") >= 0 || eog_id_of("<|calls|>") >= 0;
  if (end_id >= 0 && has_call &&
      (eog_id_of("<|return|>") >= 0 || eog_id_of("<|flush|>") >= 0)) {
    end_of_generation_[end_id] = false;
    attrs_[end_id] = kAttrUserDefined;
  }
  const int32_t s_id = eog_id_of("</s>");
  if (s_id >= 0 && (eog_id_of("<|tool_response>") >= 0 || eog_id_of("<|plamo:eos|>") >= 0)) {
    end_of_generation_[s_id] = false;
    attrs_[s_id] = kAttrNormal;
  }
  // Explicit ids win over the name-based exceptions above.
  for (size_t i = 0; i < data.extra_end_of_generation_ids.size(); ++i) {
    const int64_t id = data.extra_end_of_generation_ids[i];
    if (id < 0 || id >= n) {
      return absl::DataLossError(absl::StrCat(source_, ": extra end-of-generation id [", i,
                                              "] = ", id, " is outside the vocabulary of ", n,
                                              " tokens"));
    }
    end_of_generation_[id] = true;
  }
  return absl::OkStatus();
}

int32_t Tokenizer::Lookup(std::string_view text) const {
  auto it = text_to_id_.find(ToAbsl(text));
  return it == text_to_id_.end() ? -1 : it->second;
}

std::vector<Tokenizer::Fragment> Tokenizer::PartitionSpecial(std::string_view text,
                                                             bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : partition_order_) {
    // User-defined tokens are split out even without parse_special, as in
    // llama.cpp (and Hugging Face tokenizers).
    if (!parse_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = texts_[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const size_t end = f.begin + f.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = f.begin;
      for (size_t m; (m = window.find(needle, pos)) != std::string_view::npos;) {
        if (m > pos) next.push_back({-1, pos, m - pos});
        next.push_back({id, m, needle.size()});
        pos = m + needle.size();
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    fragments.swap(next);
  }
  return fragments;
}

void Tokenizer::EncodeFragment(std::string_view text, std::vector<int32_t>* out) const {
  std::string encoded;
  std::vector<int32_t> byte_ids;
  std::string normalized;
  if (nfc_) normalized = NfcNormalize(text);
  std::vector<std::string> words = PreTokenize(pre_, nfc_ ? std::string_view(normalized) : text);
  if (single_digits_) words = SplitDigitRuns(std::move(words));
  for (const std::string& word : words) {
    if (ignore_merges_) {
      encoded.clear();
      AppendByteEncoded(word, &encoded);
      const int32_t id = Lookup(encoded);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
    }
    byte_ids.resize(word.size());
    for (size_t i = 0; i < word.size(); ++i) byte_ids[i] = byte_ids_[static_cast<uint8_t>(word[i])];
    for (const BpeSymbol& sym : ApplyBpeMerges(merges_, byte_ids)) {
      if (sym.id >= 0) {
        out->push_back(sym.id);
        continue;
      }
      // Not a token: llama.cpp falls back to looking up each byte of the
      // encoded text as a one-byte token, dropping those it cannot find.
      encoded.clear();
      AppendByteEncoded(std::string_view(word).substr(sym.begin, sym.length), &encoded);
      for (char c : encoded) {
        const int32_t id = Lookup(std::string_view(&c, 1));
        if (id >= 0) out->push_back(id);
      }
    }
  }
}

void Tokenizer::EncodeSpmFragment(std::string_view text, bool at_text_start,
                                  std::vector<int32_t>* out) const {
  using Prefix = TokenizerData::SpmOptions::Prefix;
  const bool prepend = spm_options_.prefix == Prefix::kEveryFragment ||
                       (spm_options_.prefix == Prefix::kFirstFragment && at_text_start);
  const std::string normalized =
      SpmNormalize(text, prepend, spm_options_.prefix_unless_leading_space);
  const auto lookup = [this](std::string_view piece) { return Lookup(piece); };
  if (model_ == Model::kSpmScores) {
    EncodeSpmByScore(normalized, lookup, scores_, byte_ids_, unk_id_, out);
    return;
  }
  if (!spm_options_.split_words) {
    EncodeSpmBpeWord(normalized, lookup, byte_ids_, unk_id_, merges_, out);
    return;
  }
  for (std::string_view word : SpmSplitWords(normalized)) {
    EncodeSpmBpeWord(word, lookup, byte_ids_, unk_id_, merges_, out);
  }
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  return EncodeFragments(text, PartitionSpecial(text, parse_special), add_special);
}

std::vector<int32_t> Tokenizer::EncodeSegments(absl::Span<const TextSegment> segments,
                                               bool add_special) const {
  std::string text;
  std::vector<Fragment> fragments;
  for (const TextSegment& segment : segments) {
    const size_t offset = text.size();
    text.append(segment.text.data(), segment.text.size());
    for (Fragment f : PartitionSpecial(segment.text, segment.parse_special)) {
      f.begin += offset;
      // Fragments tile the text, so consecutive raw ones are adjacent.
      if (f.token < 0 && !fragments.empty() && fragments.back().token < 0) {
        fragments.back().length += f.length;
      } else {
        fragments.push_back(f);
      }
    }
  }
  return EncodeFragments(text, fragments, add_special);
}

std::vector<int32_t> Tokenizer::EncodeFragments(std::string_view text,
                                                absl::Span<const Fragment> fragments,
                                                bool add_special) const {
  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
    } else if (spm_) {
      EncodeSpmFragment(text.substr(f.begin, f.length), f.begin == 0, &out);
    } else {
      EncodeFragment(text.substr(f.begin, f.length), &out);
    }
  }
  if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t id, bool render_special) const {
  if (!IsValidId(id)) return "";
  if (!render_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) return "";
  return pieces_[id];
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool render_special) const {
  std::string text;
  DecodeState state;
  for (int32_t id : ids) text += DecodeNext(id, &state, render_special);
  return text;
}

std::string Tokenizer::DecodeNext(int32_t id, DecodeState* state, bool render_special) const {
  using LeadingSpace = TokenizerData::SpmOptions::LeadingSpace;
  if (!IsValidId(id)) return "";
  std::string piece = TokenToPiece(id, render_special);
  const bool first_token = !state->seen_token;
  const bool first_text = !state->seen_text && !piece.empty();
  state->seen_token = true;
  state->seen_text = state->seen_text || !piece.empty();
  if (!spm_ || piece.empty() || piece[0] != ' ') return piece;
  if ((spm_options_.leading_space == LeadingSpace::kStripFromFirstToken && first_token) ||
      (spm_options_.leading_space == LeadingSpace::kStripFromText && first_text)) {
    piece.erase(0, 1);
  }
  return piece;
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return IsValidId(id) && end_of_generation_[id];
}

absl::StatusOr<int32_t> Tokenizer::TokenId(std::string_view text) const {
  const int32_t id = Lookup(text);
  if (id < 0) {
    return absl::NotFoundError(absl::StrCat(source_, ": no token with text '",
                                            absl::CHexEscape(ToAbsl(text)), "'"));
  }
  return id;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string* const kEmpty = new std::string();
  return IsValidId(id) ? texts_[id] : *kEmpty;
}

TokenType Tokenizer::token_type(int32_t id) const {
  if (!IsValidId(id)) return TokenType::kUndefined;
  const uint8_t a = attrs_[id];
  if (a & kAttrControl) return TokenType::kControl;
  if (a & kAttrUserDefined) return TokenType::kUserDefined;
  if (a & kAttrUnknown) return TokenType::kUnknown;
  if (a & kAttrByte) return TokenType::kByte;
  if (a & kAttrUnused) return TokenType::kUnused;
  if (a & kAttrNormal) return TokenType::kNormal;
  return TokenType::kUndefined;
}

}  // namespace tessera
