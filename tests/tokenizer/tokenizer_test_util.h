// Shared helpers for the tokenizer tests: locating the real model and golden
// files, hex decoding, an independent strict UTF-8 validator, and a small
// hand-built byte-level vocabulary whose BPE results can be worked out by hand.
#ifndef TESSERA_TESTS_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define TESSERA_TESTS_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer_data.h"
#include "gtest/gtest.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {

// The real model (DefaultModelPath); "" after a test failure if it is missing.
inline std::string TokenizerModelPath() {
  const std::string path = DefaultModelPath();
  return std::ifstream(path).good() ? path : "";
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string HexDecode(const std::string& hex) {
  std::string out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

inline std::string HexEncode(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Strict UTF-8 check written from RFC 3629 independently of the library's
// own code: no overlongs, no surrogates, nothing above U+10FFFF.
inline bool IsStrictUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    int n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c >> 5) == 0x6) { n = 1; cp = c & 0x1F; }
    else if ((c >> 4) == 0xE) { n = 2; cp = c & 0x0F; }
    else if ((c >> 3) == 0x1E) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = s[i + k];
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// A miniature byte-level vocabulary:
//   ids 0..2: control "<|endoftext|>", "<|im_start|>", "<|im_end|>"
//   id  3:    user-defined "<tool>"
//   ids 4..259: the 256 single-byte tokens, in byte order (byte b -> 4 + b)
//   then merged tokens, with merges in this priority order:
//     "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d",
//     "a a", "b c", "a b"
inline constexpr int32_t kMiniByteBase = 4;
inline TokenizerData MiniVocab() {
  TokenizerData d;
  d.source = "mini-vocab";
  d.pre = "gpt-2";
  d.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"};
  d.token_types = {3, 3, 3, 4};
  // GPT-2's byte alphabet, built here from its definition (printable Latin-1
  // maps to itself, the rest to U+0100 upwards in byte order).
  std::vector<uint32_t> cps;
  uint32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    cps.push_back(self ? b : next++);
  }
  for (uint32_t cp : cps) {
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    d.tokens.push_back(s);
    d.token_types.push_back(1);
  }
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"}, {"o", "r"},
      {"\xC4\xA0w", "or"}, {"\xC4\xA0wor", "l"}, {"\xC4\xA0worl", "d"}, {"a", "a"},
      {"b", "c"}, {"a", "b"}};
  for (const auto& [l, r] : merges) {
    d.merges.push_back(l + " " + r);
    d.tokens.push_back(l + r);
    d.token_types.push_back(1);
  }
  d.ids.bos = 0;
  d.ids.eos = 0;
  d.chat_template = "";
  return d;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TOKENIZER_TOKENIZER_TEST_UTIL_H_
