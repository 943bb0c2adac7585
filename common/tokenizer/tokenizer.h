// Tokenizer: text <-> token ids, reproducing llama.cpp's tokenization
// exactly for GGUF vocabularies and Hugging Face `tokenizers` for
// tokenizer.json files (tests/tokenizer holds golden comparisons with both).
//
// Three vocabulary kinds (TokenizerData::model):
//   "gpt2"     byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): the text is
//              pre-tokenized into words (pre_tokenizer.h, chosen by
//              tokenizer.ggml.pre), then byte-level BPE runs within each word
//              (bpe.h). Invalid UTF-8 is handled as llama.cpp does (each bad
//              byte becomes U+FFFD).
//   "llama"    SentencePiece vocabularies from GGUF (Llama 2, Mistral):
//              spaces become U+2581, one U+2581 is prepended when
//              add_space_prefix, and pieces merge by score with <0xXX> byte
//              fallback (spm_scores.h), all on raw bytes.
//   "spm-bpe"  SentencePiece-style BPE from tokenizer.json: the same
//              normalisation, merges by rank (spm_bpe.h).
// Before any of these, the text is cut at special tokens: always at
// user-defined tokens' texts, and at control/unknown tokens' texts only with
// parse_special (llama.cpp's parse_special; longest token text first). For
// the SentencePiece kinds, every text fragment (at the start of the text or
// after a special token) gets the prepended U+2581, as in llama.cpp.
//
// Decoding concatenates the tokens' pieces; control and unknown tokens
// render as nothing unless render_special; ids outside the vocabulary
// contribute nothing. SentencePiece kinds turn U+2581 back into spaces,
// <0xXX> tokens into their bytes, and drop the leading space the normaliser
// added (TokenizerData::SpmOptions::LeadingSpace says which: for "llama", the
// first token's, as llama.cpp does, so [BOS, "▁Hi"] decodes to " Hi"; for
// tokenizer.json, the decoded text's). DecodeNext decodes one token at a
// time with the same result, for streaming.
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

// Text for Tokenizer::EncodeSegments, and whether special-token text in it
// becomes special tokens (Encode's parse_special).
struct TextSegment {
  std::string_view text;
  bool parse_special;
};

class Tokenizer {
 public:
  // Reads the tokenizer.* metadata of `file`. Errors name the file and key:
  // NOT_FOUND for a missing required key (tokens; merges for gpt2),
  // INVALID_ARGUMENT for a key of the wrong type, UNIMPLEMENTED for a
  // tokenizer.ggml.model other than "gpt2" or "llama" or an unknown
  // tokenizer.ggml.pre, DATA_LOSS for inconsistent data (a merge naming an
  // unknown token, an id out of range, fewer scores or types than tokens).
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
  // Encode of the segments' concatenation, with special-token text
  // recognised only inside the segments that ask for it (never across a
  // segment boundary). Raw text is joined across boundaries before BPE or
  // SentencePiece runs, so only special tokens split it: cutting a string
  // into segments that hold no special-token text changes no id.
  std::vector<int32_t> EncodeSegments(absl::Span<const TextSegment> segments,
                                      bool add_special) const;

  // Raw bytes one token contributes to text on its own, as llama.cpp's
  // token_to_piece: for SentencePiece vocabularies a leading U+2581 is a
  // space (which Decode may drop at the start; use DecodeNext for text).
  // Control and unknown tokens give "" unless render_special; out-of-range
  // ids give "".
  std::string TokenToPiece(int32_t id, bool render_special = false) const;
  // Concatenated pieces, less the leading space described above;
  // out-of-range ids are skipped.
  std::string Decode(absl::Span<const int32_t> ids, bool render_special = false) const;
  // The text `id` adds to the decode of the ids `state` has seen, updating
  // `state`: concatenating the results over a sequence gives Decode() of it.
  std::string DecodeNext(int32_t id, DecodeState* state, bool render_special = false) const;

  int32_t vocab_size() const { return static_cast<int32_t>(texts_.size()); }
  int32_t bos_id() const { return bos_id_; }  // -1 if none
  int32_t eos_id() const { return eos_id_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // eos, eot, eom and the other tokens llama.cpp stops generation at
  // (<|im_end|>, <|endoftext|>, FIM repo/separator/pad tokens, ...), and
  // TokenizerData::extra_end_of_generation_ids.
  bool IsEndOfGeneration(int32_t id) const;
  // Exact lookup of a token's (byte-level encoded) text.
  absl::StatusOr<int32_t> TokenId(std::string_view text) const;
  const std::string& chat_template() const { return chat_template_; }
  // ApplyChatTemplate (chat_template.h) on this vocabulary's template, with
  // bos_token / eos_token as its BOS / EOS texts, less a leading BOS text
  // when Encode(add_special=true) adds BOS itself (llama.cpp does the same),
  // so that encoding the result that way gives exactly one BOS.
  absl::StatusOr<std::string> RenderChat(absl::Span<const ChatMessage> messages,
                                         bool add_generation_prompt) const;
  // RenderChat's prompt encoded with add_special, the template's own text
  // with special-token parsing and message contents as plain text (a user's
  // "<|im_start|>" stays characters). When no content holds special-token
  // text, these are the ids of Encode(RenderChat(...), true, true), which
  // is what llama.cpp feeds the model. Errors as RenderChat.
  absl::StatusOr<std::vector<int32_t>> EncodeChat(absl::Span<const ChatMessage> messages,
                                                  bool add_generation_prompt) const;
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
  // Encodes `text`, already cut into `fragments` that cover it in order.
  std::vector<int32_t> EncodeFragments(std::string_view text,
                                       absl::Span<const Fragment> fragments,
                                       bool add_special) const;
  void EncodeFragment(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeSpmFragment(std::string_view text, bool at_text_start,
                         std::vector<int32_t>* out) const;
  absl::Status InitScores(const TokenizerData& data);
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
  enum class Model { kByteLevel, kSpmScores, kSpmMerges };
  Model model_ = Model::kByteLevel;
  bool spm_ = false;  // either SentencePiece kind
  TokenizerData::SpmOptions spm_options_;
  std::vector<float> scores_;  // kSpmScores
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
