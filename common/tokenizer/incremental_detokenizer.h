// Streams text out of a growing sequence of token ids.
//
// A byte-level BPE token can end in the middle of a multi-byte UTF-8
// character (emoji and CJK are often split across two or three tokens), so
// a token's piece cannot be shown on its own. The detokenizer holds back the
// bytes of a trailing character that is still incomplete and emits them once
// the character is complete. Everything it emits is well-formed UTF-8:
// bytes that can no longer become a valid character are replaced by U+FFFD
// (one per maximal ill-formed subpart, as Python's "replace" does). The
// concatenation of all Push() results and Flush() equals the sanitised
// Decode() of the same ids; in particular the leading space a SentencePiece
// vocabulary's first token carries is dropped exactly as Decode drops it
// (Tokenizer::DecodeNext).
//
// One instance per generated sequence; not thread-safe. The Tokenizer must
// outlive it.
#ifndef TESSERA_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define TESSERA_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <cstdint>
#include <string>


namespace tessera {

class Tokenizer;

// Where a token-by-token decode stands (Tokenizer::DecodeNext); start from a
// default one.
struct DecodeState {
  bool seen_token = false;  // a valid id has been decoded
  bool seen_text = false;   // a non-empty piece has been decoded
};

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // Appends `id`'s piece (control tokens contribute nothing; invalid ids are
  // ignored) and returns the text that is now complete.
  std::string Push(int32_t id);
  // Returns whatever is held back, incomplete characters as U+FFFD, and
  // resets the state (the next Push starts a new sequence).
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes of a possibly incomplete trailing character
  DecodeState state_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
