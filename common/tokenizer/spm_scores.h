// SentencePiece BPE by piece score, as llama.cpp runs it for GGUF
// vocabularies with tokenizer.ggml.model = "llama" (Llama 2, Mistral, ...).
//
// The (already normalised: spaces as U+2581) text starts as one symbol per
// UTF-8 character, where a character's length comes from its lead byte alone
// (llama.cpp's rule: 0xC0..0xDF two bytes, 0xE0..0xEF three, 0xF0..0xFF
// four, anything else one; cut short at the end of the text), so invalid
// UTF-8 still splits exactly as there. Then, repeatedly, of all adjacent
// symbol pairs whose concatenation is a vocabulary token, the one whose
// token has the highest score merges (ties: the leftmost pair). A final
// symbol that is a token is emitted as such; one that is not (a character
// missing from the vocabulary) becomes one token per byte: "<0xXX>", else
// the one-byte text itself, else the unknown token.
//
// Stateless; safe to call from many threads.
#ifndef TESSERA_COMMON_TOKENIZER_SPM_SCORES_H_
#define TESSERA_COMMON_TOKENIZER_SPM_SCORES_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace tessera {

// Appends the tokens of `text`. `lookup` maps a text to its id or -1;
// scores[id] is the token's score (ids outside it score 0); byte_ids[b] is
// the fallback token of byte b or -1, in which case unk_id (if >= 0) stands
// in for that byte.
void EncodeSpmByScore(std::string_view text,
                      const std::function<int32_t(std::string_view)>& lookup,
                      const std::vector<float>& scores,
                      const std::array<int32_t, 256>& byte_ids, int32_t unk_id,
                      std::vector<int32_t>* out);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_SPM_SCORES_H_
