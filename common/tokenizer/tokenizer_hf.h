// Reading Hugging Face tokenizer files (tokenizer.json and, optionally,
// tokenizer_config.json) into the TokenizerData a Tokenizer is built from.
//
// Supported: model.type "BPE" with
//   - byte-level BPE: pre_tokenizer ByteLevel(use_regex=true), or
//     Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]
//     (SmolLM2), or Sequence[Split(<regex>), ByteLevel(use_regex=false)]
//     where the regex is the GPT-2, Llama-3 or Qwen2 pattern; each maps to
//     the pre-tokenizer llama.cpp uses for it; the normalizer may be null
//     or NFC (Qwen2; needs ICU, nfc.h);
//   - SentencePiece-style BPE (Llama-2, Mistral): byte_fallback with
//     <0xXX> tokens, normalizer Prepend("▁") + Replace(" ", "▁") or a
//     Metaspace pre-tokenizer (spm_bpe.h).
// Anything else (another model type, regex or normalizer, BPE options such
// as dropout or a subword prefix, added tokens with lstrip/rstrip) is
// UNIMPLEMENTED naming the file and the thing, rather than tokenizing
// differently from Hugging Face.
//
// Special tokens: added_tokens with special=true are control tokens, the
// others user-defined. BOS/EOS come from tokenizer_config.json's
// bos_token/eos_token (a string or {"content": ...}), else from the
// post_processor's TemplateProcessing; add_bos from add_bos_token, else
// from whether that template starts with a special token. Tokens are not
// promoted to special by their text, unlike GGUF vocabularies.
//
// Stateless functions; thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_TOKENIZER_HF_H_
#define TESSERA_COMMON_TOKENIZER_TOKENIZER_HF_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/tokenizer/tokenizer_data.h"

namespace tessera {

// Errors name the file and the JSON key: NOT_FOUND for a file that cannot be
// read, INVALID_ARGUMENT for malformed JSON, a missing or mistyped key, a
// merge naming an unknown token, an id out of range or a duplicate id,
// UNIMPLEMENTED for a configuration listed above as unsupported.
// tokenizer_config_json_path may be empty.
absl::StatusOr<TokenizerData> ReadHfTokenizerData(const std::string& tokenizer_json_path,
                                                  const std::string& tokenizer_config_json_path);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_TOKENIZER_HF_H_
