// Pre-tokenization: splitting text into the "words" that BPE merges within.
//
// Each kind reproduces one of llama.cpp's BPE pre-tokenizers (chosen by the
// GGUF key tokenizer.ggml.pre), including its quirks, because token ids must
// match llama.cpp's exactly:
//   - Split patterns apply in sequence, each within the pieces the previous
//     one produced; so for "smollm", whose first pattern isolates every \p{N}
//     code point, the GPT-2 pattern's \s+(?!\S) sees a piece end after a run
//     of spaces before a digit and keeps the whole run ("a   1" -> "a", "   ",
//     "1").
//   - The GPT-2 and Llama-3 patterns are matched by hand-written scanners over
//     code points (no regex engine), mirroring llama.cpp's.
//   - Text is first decoded leniently (common/tokenizer/unicode.h); each
//     invalid byte becomes U+FFFD, so words are always valid UTF-8.
// Stateless and thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_PRE_TOKENIZER_H_
#define TESSERA_COMMON_TOKENIZER_PRE_TOKENIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera {

enum class PreTokenizerKind {
  // llama.cpp's fallback for a missing or "default" pre: punctuation runs,
  // then GPT-2, then digit runs, then ASCII digit triples.
  kDefault,
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  kGpt2,
  // \p{N} (each digit alone), then the GPT-2 pattern. SmolLM / StarCoder.
  kSmolLm,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
};

// Maps a tokenizer.ggml.pre value to a kind, using llama.cpp's names: ""
// and "default" -> kDefault; "gpt-2" (also "gpt2") -> kGpt2; "smollm" ->
// kSmolLm; "llama3", "llama-v3", "llama-bpe" -> kLlama3. Anything else is
// UNIMPLEMENTED naming it.
absl::StatusOr<PreTokenizerKind> PreTokenizerFromName(std::string_view name);

// Splits `text` into words. The words' concatenation is `text` after lenient
// UTF-8 normalisation; no word is empty.
std::vector<std::string> PreTokenize(PreTokenizerKind kind, std::string_view text);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_PRE_TOKENIZER_H_
