// SentencePiece-style BPE, as Hugging Face tokenizers runs it for Llama-2 /
// Mistral tokenizer.json files (model BPE with byte_fallback, normalizer
// Prepend("▁") + Replace(" ", "▁"), no byte-level mapping).
//
// A fragment of text (between special tokens) is normalised by turning each
// space into U+2581 ("▁"), optionally after prepending one. The normalised
// word starts as one symbol per UTF-8 character: the character's token, or,
// for a character with no token, the <0xXX> tokens of its bytes (the unknown
// token if a byte token is missing, consecutive unknowns fused into one).
// The merges then apply by rank, leftmost first among equal ranks (bpe.h).
// Decoding turns "▁" back into spaces.
//
// Stateless functions; safe to call from many threads.
#ifndef TESSERA_COMMON_TOKENIZER_SPM_BPE_H_
#define TESSERA_COMMON_TOKENIZER_SPM_BPE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/bpe.h"

namespace tessera {

// "<0xXX>" (upper-case hex), the byte-fallback token text of `byte`.
std::string SpmByteTokenText(uint8_t byte);

// The text a normal vocabulary entry decodes to: its "▁"s as spaces.
std::string SpmPieceText(std::string_view token);

// Spaces -> "▁", with one "▁" prepended if `prepend` and `text` is not empty
// (the Prepend normalizer leaves empty text alone) and, if
// unless_leading_space, `text` does not start with a space (Metaspace).
std::string SpmNormalize(std::string_view text, bool prepend, bool unless_leading_space);

// Splits normalised text before every "▁" (Metaspace's split=true): each
// word but possibly the first starts with one. No word is empty.
std::vector<std::string_view> SpmSplitWords(std::string_view normalized);

// Appends the tokens of one normalised word. `lookup` maps a text to its id
// or -1; byte_ids holds the <0xXX> token ids (-1 where missing); unk_id is
// the unknown token or -1 (then characters that cannot be encoded are
// dropped, as Hugging Face does without an unk_token).
void EncodeSpmBpeWord(std::string_view word,
                      const std::function<int32_t(std::string_view)>& lookup,
                      const std::array<int32_t, 256>& byte_ids, int32_t unk_id,
                      const BpeMergeTable& merges, std::vector<int32_t>* out);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_SPM_BPE_H_
