// Tokenizer: text <-> token ids for byte-level BPE models (GPT-2 style),
// reproducing llama.cpp's tokenization exactly (tests/tokenizer holds golden
// comparisons against llama.cpp for SmolLM2).
//
// Encoding is three stages, as in llama.cpp:
//   1. special-token partition: the text is cut at every occurrence of a
//      control/unknown token's text (only with parse_special) and of a
//      user-defined token's text (always), longest token text first;
//   2. pre-tokenization of each remaining text fragment into words
//      (pre_tokenizer.h, chosen by tokenizer.ggml.pre);
//   3. byte-level BPE within each word (bpe.h).
// Any byte string is accepted; invalid UTF-8 is handled as llama.cpp does
// (each bad byte becomes U+FFFD). Decoding is the concatenation of the
// tokens' pieces; ids outside the vocabulary contribute nothing.
//
// Vocabularies read from a Hugging Face tokenizer.json (FromHfFiles) may
// instead be SentencePiece-style BPE (TokenizerData::model "spm-bpe",
// spm_bpe.h): spaces become U+2581, merges run over characters, unknown
// characters fall back to <0xXX> byte tokens, and Decode drops the leading
// space the normaliser added.
//
// A Tokenizer is immutable after construction; every method is const and safe
// to call from many threads at once.
#ifndef TESSERA_COMMON_TOKENIZER_TOKENIZER_H_
#define TESSERA_COMMON_TOKENIZER_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer/bpe.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer_data.h"

namespace tessera {

class GgufFile;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  // Reads the tokenizer.* metadata of `file`. Errors name the file and key:
  // NOT_FOUND for a missing required key (tokens, merges), INVALID_ARGUMENT
  // for a key of the wrong type, UNIMPLEMENTED for a tokenizer.ggml.model
  // other than "gpt2" or an unknown tokenizer.ggml.pre, DATA_LOSS for
  // inconsistent data (a merge naming an unknown token, an id out of range).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);
  // The same from already-extracted metadata.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromData(const TokenizerData& data);
  // Reads a Hugging Face tokenizer.json and, unless its path is empty, the
  // tokenizer_config.json beside it (ReadHfTokenizerData in tokenizer_hf.h;
  // errors as documented there). Encode with parse_special=true to match
  // Hugging Face, which always splits out added tokens.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfFiles(
      const std::string& tokenizer_json_path, const std::string& tokenizer_config_json_path);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS if add_bos() (and append EOS if the metadata's
  // add_eos_token says so). parse_special: text equal to a control token's
  // text becomes that token (llama.cpp's parse_special=true).
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special) const;

  // Raw bytes one token contributes to text. Control and unknown tokens give
  // "" unless render_special; out-of-range ids give "".
  std::string TokenToPiece(int32_t id, bool render_special = false) const;
  // Concatenated pieces; out-of-range ids are skipped.
  std::string Decode(absl::Span<const int32_t> ids, bool render_special = false) const;

  int32_t vocab_size() const { return static_cast<int32_t>(texts_.size()); }
  int32_t bos_id() const { return bos_id_; }  // -1 if none
  int32_t eos_id() const { return eos_id_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // eos, eot, eom and the other tokens llama.cpp stops generation at
  // (<|im_end|>, <|endoftext|>, FIM repo/separator/pad tokens, ...).
  bool IsEndOfGeneration(int32_t id) const;
  // Exact lookup of a token's (byte-level encoded) text.
  absl::StatusOr<int32_t> TokenId(std::string_view text) const;
  const std::string& chat_template() const { return chat_template_; }
  bool IsValidId(int32_t id) const { return id >= 0 && id < vocab_size(); }
  // The vocabulary entry's type after llama.cpp's adjustments (tokens it
  // recognises as end-of-turn or FIM markers are promoted to kControl).
  TokenType token_type(int32_t id) const;
  // The vocabulary text of `id` ("" for an invalid id).
  const std::string& token_text(int32_t id) const;

 private:
  Tokenizer() = default;
  absl::Status Init(const TokenizerData& data);
  absl::Status BuildMerges(const TokenizerData& data);
  absl::Status ResolveSpecialIds(const TokenizerData& data);

  struct Fragment {
    int32_t token;  // -1: raw text [begin, begin + length)
    size_t begin;
    size_t length;
  };
  std::vector<Fragment> PartitionSpecial(std::string_view text, bool parse_special) const;
  void EncodeFragment(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeSpmFragment(std::string_view text, bool at_text_start,
                         std::vector<int32_t>* out) const;
  int32_t Lookup(std::string_view text) const;

  std::string source_;
  std::vector<std::string> texts_;
  std::vector<uint8_t> attrs_;       // kAttr* bits (tokenizer.cc)
  std::vector<std::string> pieces_;  // rendered with render_special=true
  absl::flat_hash_map<std::string, int32_t> text_to_id_;
  BpeMergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<int32_t> partition_order_;  // special tokens, longest text first
  std::vector<bool> end_of_generation_;
  PreTokenizerKind pre_ = PreTokenizerKind::kDefault;
  bool ignore_merges_ = false;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  std::string chat_template_;
  // Set for TokenizerData::model "spm-bpe" (spm_bpe.h).
  bool spm_ = false;
  TokenizerData::SpmOptions spm_options_;
  int32_t unk_id_ = -1;
  // "qwen2": words of pre_ (Llama-3) that are digit runs split into digits.
  bool single_digits_ = false;
  bool nfc_ = false;
};

// Extracts the tokenizer.* metadata of `file` without building a Tokenizer
// (FromGguf is FromData(ReadTokenizerData(file))). Errors as for FromGguf,
// except that an unsupported tokenizer.ggml.model is only reported by
// FromData.
absl::StatusOr<TokenizerData> ReadTokenizerData(const GgufFile& file);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_TOKENIZER_H_
