// Generated-data interface: Unicode category flags per code point range.
//
// The table itself (unicode_tables.cc) is written by
// scripts/gen_unicode_tables.py; code should use common/tokenizer/unicode.h,
// which wraps it. Immutable data, safe from any thread.
#ifndef TESSERA_COMMON_TOKENIZER_UNICODE_TABLES_H_
#define TESSERA_COMMON_TOKENIZER_UNICODE_TABLES_H_

#include <cstddef>
#include <cstdint>

namespace tessera::unicode_internal {

struct CodepointRange {
  uint32_t start;  // first code point of the run
  uint16_t flags;  // CodepointFlags bits shared by the whole run
};

extern const char kUnicodeVersion[];
// Sorted by start; kCodepointRanges[0].start == 0.
extern const CodepointRange kCodepointRanges[];
extern const size_t kNumCodepointRanges;

}  // namespace tessera::unicode_internal

#endif  // TESSERA_COMMON_TOKENIZER_UNICODE_TABLES_H_
