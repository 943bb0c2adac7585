// Unicode NFC normalisation of UTF-8 text, for tokenizer.json files whose
// normalizer is NFC (Qwen2 and others). Backed by ICU when the build found
// it; without ICU, NfcAvailable() is false and such files are rejected at
// load time rather than tokenized differently from Hugging Face.
//
// Stateless; thread-safe (ICU's NFC instance is immutable and shared).
#ifndef TESSERA_COMMON_TOKENIZER_NFC_H_
#define TESSERA_COMMON_TOKENIZER_NFC_H_

#include <string>
#include <string_view>

namespace tessera {

bool NfcAvailable();

// The NFC form of `text`. Each invalid UTF-8 byte becomes U+FFFD first (as
// the pre-tokenizer would turn it anyway). Returns the input, made valid,
// unchanged if NFC is unavailable.
std::string NfcNormalize(std::string_view text);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_NFC_H_
