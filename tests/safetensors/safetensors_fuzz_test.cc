// Randomised corruption of valid safetensors files. Every mutated buffer must
// either parse or fail with a status naming the file, and never crash; when it
// parses, every tensor's bytes are read so that AddressSanitizer (build with
// -DTESSERA_ASAN=ON) catches any range outside the buffer, which FromBuffer
// allocates at exactly the input's size.
//
// Deterministic for a given seed; runs for a time budget (default 8 s).
// TESSERA_FUZZ_SEED and TESSERA_FUZZ_SECONDS override both; a failure prints
// the seed and the iteration so it can be replayed.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/safetensors/safetensors_file.h"
#include "gtest/gtest.h"
#include "tests/safetensors/safetensors_test_util.h"

namespace tessera {
namespace {

constexpr char kName[] = "fuzz.safetensors";

std::string SeedFile() {
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i) - 2.0f;
  return testing::WriteSafetensors(
      {{"model.embed_tokens.weight", "F32", {4, 6}, testing::F32Bytes(v)},
       {"model.layers.0.input_layernorm.weight", "BF16", {6}, testing::U16Bytes({1, 2, 3, 4, 5, 6})},
       {"model.layers.0.self_attn.q_proj.weight", "F16", {2, 3}, testing::U16Bytes({7, 8, 9, 10, 11, 12})},
       {"model.norm.weight", "F32", {}, testing::F32Bytes({1})},
       {"empty", "F16", {0}, ""}},
      {{"format", "pt"}});
}

// Strings that, spliced into the JSON, reach the validation paths: numbers at
// the integer limits, negative and fractional values, other JSON types.
const char* const kTokens[] = {
    "0", "1", "-1", "4", "24", "96", "4294967296", "18446744073709551615", "18446744073709551616",
    "9223372036854775807", "1e400", "2.5", "null", "true", "[]", "{}", "\"F32\"", "\"F16\"",
    "\"BF16\"", "\"I8\"", "\"F64\"", "\"x\"", ",", ":", "[", "]", "{", "}", "\"", "\\u0000",
    "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"model.norm.weight\""};

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string Mutate(std::string b, size_t header_end) {
    const int rounds = 1 + Uniform(3);
    for (int r = 0; r < rounds && !b.empty(); ++r) {
      switch (Uniform(7)) {
        case 0: {  // bit flip anywhere
          size_t at = Uniform(b.size());
          b[at] = static_cast<char>(b[at] ^ (1 << Uniform(8)));
          break;
        }
        case 1:  // truncation
          b.resize(Uniform(b.size()));
          break;
        case 2: {  // header length: small deltas and boundary values
          uint64_t n = 0;
          for (int i = 7; i >= 0 && b.size() >= 8; --i) n = (n << 8) | static_cast<uint8_t>(b[i]);
          static const uint64_t kLimits[] = {0, 1, 2, 7, 8, 0x7fffffff, 0xffffffff,
                                             0x7fffffffffffffffull, 0xffffffffffffffffull};
          n = Uniform(2) ? n + Uniform(17) - 8 : kLimits[Uniform(9)];
          if (b.size() < 8) b.resize(8);
          for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
          break;
        }
        case 3:
        case 4: {  // JSON byte mutation inside the header
          if (header_end <= 8 || b.size() <= 8) break;
          size_t at = 8 + Uniform(std::min(header_end, b.size()) - 8);
          static const char kBytes[] = "{}[],:\"0123456789-.eE \\";
          b[at] = Uniform(4) == 0 ? static_cast<char>(Uniform(256)) : kBytes[Uniform(sizeof(kBytes) - 1)];
          break;
        }
        case 5: {  // splice a token over a run of header bytes (keeps the length)
          if (header_end <= 8 || b.size() <= 8) break;
          size_t at = 8 + Uniform(std::min(header_end, b.size()) - 8);
          std::string tok = kTokens[Uniform(sizeof(kTokens) / sizeof(kTokens[0]))];
          size_t len = std::min(tok.size(), b.size() - at);
          b.replace(at, len, tok.substr(0, len));
          break;
        }
        case 6: {  // insert or delete bytes inside the header, fixing the length
          if (header_end <= 8 || b.size() <= 8) break;
          size_t at = 8 + Uniform(std::min(header_end, b.size()) - 8);
          if (Uniform(2)) {
            b.insert(at, kTokens[Uniform(sizeof(kTokens) / sizeof(kTokens[0]))]);
          } else {
            b.erase(at, 1 + Uniform(8));
          }
          uint64_t n = b.size() - 8 - (SeedSize() - header_end);
          if (n <= b.size() - 8) {
            for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
          }
          break;
        }
      }
    }
    return b;
  }

  void SetSeedSize(size_t s) { seed_size_ = s; }

 private:
  size_t SeedSize() const { return seed_size_; }
  size_t Uniform(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::mt19937_64 rng_;
  size_t seed_size_ = 0;
};

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(SafetensorsFuzzTest, MutatedFilesNeverCrash) {
  const uint64_t seed = EnvOr("TESSERA_FUZZ_SEED", 20261123);
  const double seconds = static_cast<double>(EnvOr("TESSERA_FUZZ_SECONDS", 8));
  const std::string valid = SeedFile();
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(valid[i]);
  const size_t header_end = 8 + n;

  // The unmutated seed must parse, or the fuzzing proves nothing.
  auto base = SafetensorsFile::FromBuffer(kName, valid);
  ASSERT_TRUE(base.ok()) << base.status();
  ASSERT_EQ((*base)->tensors().size(), 5u);

  Mutator m(seed);
  m.SetSeedSize(valid.size());
  const auto start = std::chrono::steady_clock::now();
  uint64_t iterations = 0, parsed = 0;
  uint64_t checksum = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    const std::string bytes = m.Mutate(valid, header_end);
    auto f = SafetensorsFile::FromBuffer(kName, bytes);
    ++iterations;
    if (!f.ok()) {
      ASSERT_NE(f.status().code(), absl::StatusCode::kOk);
      ASSERT_NE(f.status().message().find(kName), std::string::npos)
          << "seed " << seed << " iteration " << iterations << ": " << f.status();
      continue;
    }
    ++parsed;
    for (const SafetensorsTensorInfo& t : (*f)->tensors()) {
      ASSERT_LE(t.begin, t.end);
      ASSERT_LE((*f)->data_start() + t.end, (*f)->size())
          << "seed " << seed << " iteration " << iterations << " tensor " << t.name;
      ASSERT_EQ(t.size_bytes(), static_cast<uint64_t>(t.num_elements()) * SafetensorsDtypeSize(t.dtype));
      const uint8_t* p = (*f)->TensorData(t);
      for (uint64_t i = 0; i < t.size_bytes(); ++i) checksum += p[i];
      ASSERT_EQ((*f)->FindTensor(t.name), &t);
    }
    for (const auto& [k, v] : (*f)->metadata()) checksum += k.size() + v.size();
  }
  std::printf("%llu iterations, %llu parsed, checksum %llu\n",
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(parsed),
              static_cast<unsigned long long>(checksum));
  EXPECT_GT(iterations, 100u);
  EXPECT_GT(parsed, 0u);
}

}  // namespace
}  // namespace tessera
