// Randomised robustness test: arbitrary bytes into Encode (both flag
// settings), arbitrary ids into Decode and the incremental detokenizer, on the
// real SmolLM2 vocabulary. Fixed seed, bounded by both an iteration count and
// a wall-clock budget (TESSERA_FUZZ_SECONDS, default 6), so it is
// reproducible and quick. Meant to be run under AddressSanitizer as well
// (-DTESSERA_ASAN=ON).
//
// Beyond "does not crash", each iteration checks invariants that hold for any
// input: ids are in range; valid UTF-8 round-trips through Encode/Decode; the
// detokenizer emits only well-formed UTF-8 and, in total, exactly the
// sanitised Decode of the same ids.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode.h"
#include "gtest/gtest.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace tessera {
namespace {

using ::tessera::testing::HexEncode;
using ::tessera::testing::IsStrictUtf8;
using ::tessera::testing::TokenizerModelPath;

const char* const kFragments[] = {
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "start|>", "<|", "|>", "<",
    "<file_sep>", "<reponame>", "user\n", " ", "  ", "\t", "\n", "\r\n", "\xC2\xA0",
    "\xE3\x80\x80", "'s", "'", "123", "4", "hello", " world", "\xC3\xA9", "e\xCC\x81",
    "\xF0\x9F\x98\x80", "\xE2\x80\x8D", "\xE4\xBD\xA0", "\xD9\x85", "\xEF\xBF\xBD", "\x80",
    "\xFF", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xE2\x82",
    "\xF0\x9F", "!", "...", "$", "\xC2\xBD"};

std::string RandomBytes(std::mt19937& rng) {
  std::string s;
  const int parts = std::uniform_int_distribution<int>(0, 12)(rng);
  for (int i = 0; i < parts; ++i) {
    switch (rng() % 3) {
      case 0:
        s += kFragments[rng() % (sizeof(kFragments) / sizeof(kFragments[0]))];
        break;
      case 1: {
        const int n = rng() % 6;
        for (int k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() & 0xFF));
        break;
      }
      default: {
        const int n = 1 + rng() % 5;
        for (int k = 0; k < n; ++k) s.push_back(static_cast<char>(0x20 + rng() % 95));
        break;
      }
    }
  }
  return s;
}

// Random well-formed UTF-8: code points from several planes, no surrogates.
std::string RandomValidUtf8(std::mt19937& rng) {
  std::string s;
  const int n = rng() % 24;
  for (int i = 0; i < n; ++i) {
    uint32_t cp;
    switch (rng() % 5) {
      case 0: cp = 0x20 + rng() % 0x5F; break;
      case 1: cp = rng() % 0x80; break;
      case 2: cp = 0x80 + rng() % 0x780; break;
      case 3: cp = 0x800 + rng() % 0xF800; break;
      default: cp = 0x10000 + rng() % 0x100000; break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    AppendUtf8(cp, &s);
  }
  return s;
}

bool AllBytesHaveTokens(const Tokenizer& tok, const std::string& text) {
  for (char c : text) {
    std::string encoded;
    AppendUtf8(ByteToCodepoint(static_cast<uint8_t>(c)), &encoded);
    if (!tok.TokenId(encoded).ok()) return false;
  }
  return true;
}

TEST(TokenizerFuzzTest, RandomInputsKeepInvariants) {
  const std::string path = TokenizerModelPath();
  ASSERT_FALSE(path.empty());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto loaded = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tok = **loaded;

  double budget_s = 6.0;
  if (const char* env = std::getenv("TESSERA_FUZZ_SECONDS")) budget_s = std::atof(env);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(budget_s));
  std::mt19937 rng(12345);
  int iterations = 0;
  int round_trips = 0;
  for (; iterations < 1000000 && std::chrono::steady_clock::now() < deadline; ++iterations) {
    // Arbitrary bytes, both flag settings.
    const std::string bytes = RandomBytes(rng);
    for (bool parse_special : {false, true}) {
      const std::vector<int32_t> ids = tok.Encode(bytes, rng() % 2 == 0, parse_special);
      for (int32_t id : ids) ASSERT_TRUE(tok.IsValidId(id)) << HexEncode(bytes);
      if (!bytes.empty() && !parse_special && AllBytesHaveTokens(tok, bytes)) {
        ASSERT_FALSE(ids.empty()) << HexEncode(bytes);
      }
    }

    // Well-formed text survives a round trip, provided every byte has a
    // token: SmolLM2's vocabulary lacks 21 of the 256 byte tokens (0x04,
    // 0xF1, ...), and llama.cpp, like us, drops such bytes.
    const std::string text = RandomValidUtf8(rng);
    if (AllBytesHaveTokens(tok, text)) {
      ASSERT_EQ(tok.Decode(tok.Encode(text, false, false)), text) << HexEncode(text);
      ++round_trips;
    }

    // Random ids, valid or not, through Decode and the detokenizer.
    std::vector<int32_t> ids(rng() % 16);
    for (int32_t& id : ids) {
      switch (rng() % 4) {
        case 0: id = static_cast<int32_t>(rng()); break;  // anything
        case 1: id = static_cast<int32_t>(rng() % 300) - 20; break;  // specials, bytes, negatives
        default: id = static_cast<int32_t>(rng() % (tok.vocab_size() + 10)); break;
      }
    }
    const bool render = rng() % 2 == 0;
    const std::string decoded = tok.Decode(ids, render);
    std::string sanitized;
    AppendValidUtf8(decoded, &sanitized);
    IncrementalDetokenizer detok(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string out = detok.Push(id);
      ASSERT_TRUE(IsStrictUtf8(out)) << HexEncode(out);
      streamed += out;
    }
    const std::string rest = detok.Flush();
    ASSERT_TRUE(IsStrictUtf8(rest));
    streamed += rest;
    if (!render) {
      ASSERT_EQ(streamed, sanitized);
    }
  }
  std::printf("fuzz: %d iterations (%d round trips) in budget %.1f s\n", iterations,
              round_trips, budget_s);
  EXPECT_GT(iterations, 100);
  EXPECT_GT(round_trips, iterations / 4);
}

}  // namespace
}  // namespace tessera
