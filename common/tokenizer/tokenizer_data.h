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
  // tokenizer.ggml.model: "gpt2" (byte-level BPE); "llama" (SentencePiece
  // vocabularies in GGUF: pieces merged by score, spm_scores.h); or
  // "spm-bpe" for SentencePiece-style BPE over characters with <0xXX> byte
  // fallback driven by merges, which only Hugging Face tokenizer.json files
  // produce (tokenizer_hf.h, spm_bpe.h).
  std::string model = "gpt2";
  // tokenizer.ggml.pre; "" means llama.cpp's "default" pre-tokenizer.
  // Besides the names PreTokenizerFromName knows, "qwen2" (the Llama-3
  // pattern with \p{N} single digits) is accepted.
  std::string pre;
  // tokenizer.ggml.tokens: token id -> text (byte-level encoded).
  std::vector<std::string> tokens;
  // tokenizer.ggml.token_type: TokenType values, one per token; empty means
  // every token is normal.
  std::vector<int32_t> token_types;
  // tokenizer.ggml.merges: "left right", in priority order.
  std::vector<std::string> merges;
  // tokenizer.ggml.scores: one per token ("llama" merges the adjacent pair
  // whose concatenation scores highest); empty means every score is 0.
  std::vector<float> scores;

  // tokenizer.ggml.<name>_token_id; unset keys take llama.cpp's defaults
  // (for gpt2: bos = eos = 11 when the vocabulary has that id; for llama:
  // unk = 0, bos = 1, eos = 2) or are
  // auto-detected from token texts (eot, eom, fim_*).
  struct SpecialIds {
    std::optional<int64_t> bos, eos, eot, eom, unk, sep, pad;
    std::optional<int64_t> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  } ids;

  // Further ids that end generation, beyond the ones the vocabulary implies
  // (a Hugging Face generation_config.json's eos_token_id list, which
  // Llama-3-Instruct uses to stop at <|eot_id|> as well as at EOS). Each
  // must be a vocabulary id.
  std::vector<int64_t> extra_end_of_generation_ids;

  // tokenizer.ggml.add_bos_token / add_eos_token; unset = llama.cpp's
  // default (true for llama and llama-bpe vocabularies, false otherwise).
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;

  // tokenizer.chat_template; "" if absent.
  std::string chat_template;

  // llama.cpp promotes tokens it knows by text (<|im_end|>, <|fim_prefix|>,
  // ...) to control tokens and finds eot/fim ids by name. Hugging Face does
  // not: its tokenizer.json marks special tokens itself, so tokenizer_hf.cc
  // turns this off (a "<|endoftext|>" that is an ordinary vocabulary entry
  // then stays ordinary; by-name end-of-generation applies to control
  // tokens only).
  bool detect_special_by_name = true;

  // Unicode NFC before pre-tokenization (a tokenizer.json NFC normalizer);
  // needs NfcAvailable() (nfc.h).
  bool nfc = false;

  // Whether a word that is itself a token skips the merges; unset = the
  // pre-tokenizer's default (true for llama-bpe, as llama.cpp does).
  std::optional<bool> ignore_merges;

  // How "spm-bpe" and "llama" text is normalised and decoded (ignored for
  // "gpt2"). ReadTokenizerData sets them for "llama" from
  // tokenizer.ggml.add_space_prefix (default true): prefix kEveryFragment
  // (llama.cpp prefixes the text at the start and after every special
  // token) or kNever, and leading_space kStripFromFirstToken or kKeep.
  struct SpmOptions {
    // Where a U+2581 is prepended before spaces become U+2581: to every text
    // fragment between special tokens (the Prepend normalizer), only to the
    // fragment at the start of the text (Metaspace prepend_scheme "first"),
    // or never.
    enum class Prefix { kEveryFragment, kFirstFragment, kNever };
    Prefix prefix = Prefix::kEveryFragment;
    // Metaspace prepends nothing to text that already starts with a space;
    // the Prepend normalizer always prepends.
    bool prefix_unless_leading_space = false;
    // Metaspace split=true: merges stay within U+2581-led words.
    bool split_words = false;
    // Which leading space decoding drops: none; one at the start of the
    // decoded text (Hugging Face's Strip / Metaspace decoders, applied after
    // special tokens are skipped); or one at the start of the first token's
    // piece, whatever that token is (llama.cpp's detokenizer, which lets a
    // leading BOS "use up" the removal).
    enum class LeadingSpace { kKeep, kStripFromText, kStripFromFirstToken };
    LeadingSpace leading_space = LeadingSpace::kStripFromText;
  } spm;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_TOKENIZER_DATA_H_
