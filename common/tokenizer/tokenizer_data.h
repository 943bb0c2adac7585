// The plain inputs a Tokenizer is built from, as stored in GGUF metadata.
//
// Tokenizer::FromGguf fills this from the tokenizer.* keys; tests and tools
// may fill it by hand. A value type with no behaviour.
#ifndef TESSERA_COMMON_TOKENIZER_TOKENIZER_DATA_H_
#define TESSERA_COMMON_TOKENIZER_TOKENIZER_DATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

struct TokenizerData {
  // Where the data came from (a GGUF path); used in error messages.
  std::string source;
  // tokenizer.ggml.model; only "gpt2" (byte-level BPE) is supported.
  std::string model = "gpt2";
  // tokenizer.ggml.pre; "" means llama.cpp's "default" pre-tokenizer.
  std::string pre;
  // tokenizer.ggml.tokens: token id -> text (byte-level encoded).
  std::vector<std::string> tokens;
  // tokenizer.ggml.token_type: TokenType values, one per token; empty means
  // every token is normal.
  std::vector<int32_t> token_types;
  // tokenizer.ggml.merges: "left right", in priority order.
  std::vector<std::string> merges;

  // tokenizer.ggml.<name>_token_id; unset keys take llama.cpp's defaults
  // (for gpt2: bos = eos = 11 when the vocabulary has that id) or are
  // auto-detected from token texts (eot, eom, fim_*).
  struct SpecialIds {
    std::optional<int64_t> bos, eos, eot, eom, unk, sep, pad;
    std::optional<int64_t> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  } ids;

  // tokenizer.ggml.add_bos_token / add_eos_token; unset = the pre-tokenizer's
  // default (true for llama-bpe, false otherwise).
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;

  // tokenizer.chat_template; "" if absent.
  std::string chat_template;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_TOKENIZER_DATA_H_
