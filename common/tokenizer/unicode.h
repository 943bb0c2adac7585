// Code point classification and the UTF-8 conversions the tokenizer needs.
//
// Classification follows llama.cpp's unicode tables (general category plus
// the White_Space property, Unicode 15.1), because the pre-tokenizers must
// split text exactly where llama.cpp splits it.
//
// Decoding deliberately reproduces llama.cpp's lenient decoder rather than a
// strict one: the tokenizer must produce the same token ids for any byte
// string, and llama.cpp (a) turns each byte it cannot start a sequence with
// into U+FFFD and moves on by one byte, and (b) accepts overlong forms and
// surrogates, re-encoding them canonically. Strict validation, for text we
// emit, lives in IncompleteUtf8Suffix / AppendValidUtf8.
//
// All functions are pure and thread-safe.
#ifndef TESSERA_COMMON_TOKENIZER_UNICODE_H_
#define TESSERA_COMMON_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

// Bit flags of one code point. Exactly one category bit is set for every
// code point below 0x110000 (kUndefined for unassigned ones); kWhitespace may
// be set in addition.
enum CodepointFlags : uint16_t {
  kCpUndefined = 0x0001,
  kCpNumber = 0x0002,       // \p{N}
  kCpLetter = 0x0004,       // \p{L}
  kCpSeparator = 0x0008,    // \p{Z}
  kCpMark = 0x0010,         // \p{M}
  kCpPunctuation = 0x0020,  // \p{P}
  kCpSymbol = 0x0040,       // \p{S}
  kCpControl = 0x0080,      // \p{C}
  kCpWhitespace = 0x0100,   // \s (White_Space)
};

inline constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Flags of `cpt`; code points >= 0x110000 are kCpUndefined.
uint16_t CodepointFlagsOf(uint32_t cpt);

// The Unicode version the tables were generated from, e.g. "15.1.0".
const char* UnicodeTablesVersion();

// Decodes `text` the way llama.cpp does (see the file comment). Never fails;
// every returned code point is < 0x110000.
std::vector<uint32_t> DecodeUtf8Lenient(std::string_view text);

// Appends the UTF-8 encoding of `cpt` (< 0x110000; surrogates are encoded
// as-is, as llama.cpp does).
void AppendUtf8(uint32_t cpt, std::string* out);

// Appends `bytes` to `out` as well-formed UTF-8, replacing each maximal
// ill-formed subpart with U+FFFD (the Unicode-recommended practice, which is
// also what Python's bytes.decode("utf-8", "replace") does).
void AppendValidUtf8(std::string_view bytes, std::string* out);

// Number of bytes at the end of `bytes` that form a proper prefix of some
// well-formed sequence (so more bytes could complete it); 0..3.
size_t IncompleteUtf8Suffix(std::string_view bytes);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_UNICODE_H_
