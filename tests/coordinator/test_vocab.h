// A small byte-level vocabulary for coordinator unit tests: ids 0..25 are
// "a".."z", 26..51 "A".."Z", 52 " ", then "w<id>" fillers, and the last id
// is "<|endoftext|>" (a control token, end of generation).
#ifndef TESSERA_TESTS_COORDINATOR_TEST_VOCAB_H_
#define TESSERA_TESTS_COORDINATOR_TEST_VOCAB_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/tokenizer/tokenizer.h"

namespace tessera::testing {

inline std::unique_ptr<Tokenizer> TestTokenizer(int vocab = 300) {
  TokenizerData d;
  d.model = "gpt2";
  for (int i = 0; i < vocab; ++i) {
    if (i < 26) {
      d.tokens.push_back(std::string(1, static_cast<char>('a' + i)));
    } else if (i < 52) {
      d.tokens.push_back(std::string(1, static_cast<char>('A' + i - 26)));
    } else if (i == 52) {
      d.tokens.push_back("\xc4\xa0");  // byte-level space
    } else if (i == vocab - 1) {
      d.tokens.push_back("<|endoftext|>");
    } else {
      d.tokens.push_back(absl::StrCat("w", i));
    }
    d.token_types.push_back(i == vocab - 1 ? static_cast<int32_t>(TokenType::kControl)
                                           : static_cast<int32_t>(TokenType::kNormal));
  }
  d.ids.bos = vocab - 1;
  d.ids.eos = vocab - 1;
  auto t = Tokenizer::FromData(d);
  return t.ok() ? std::move(*t) : nullptr;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_COORDINATOR_TEST_VOCAB_H_
