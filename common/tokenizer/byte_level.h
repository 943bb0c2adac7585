// GPT-2's reversible byte <-> printable-code-point mapping.
//
// Byte-level BPE vocabularies never contain raw bytes: every byte of the
// input is first replaced by a printable code point (printable Latin-1 bytes
// map to themselves, the other 68 bytes to U+0100..U+0143, in byte order), so
// that every token is valid UTF-8 text. Pure functions over constant tables;
// thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_BYTE_LEVEL_H_
#define TESSERA_COMMON_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

// The code point standing for `byte`.
uint32_t ByteToCodepoint(uint8_t byte);

// The byte a code point stands for, or -1 if `cpt` is not in the alphabet.
int CodepointToByte(uint32_t cpt);

// Appends the byte-level encoding (UTF-8 of the mapped code points) of `raw`.
void AppendByteEncoded(std::string_view raw, std::string* out);

// Decodes a byte-level token text back to raw bytes. Code points outside the
// alphabet (which a well-formed vocabulary never has) are copied through as
// their UTF-8; returns false if there was any.
bool ByteDecode(std::string_view encoded, std::string* out);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_BYTE_LEVEL_H_
