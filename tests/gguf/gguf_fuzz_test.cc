// Randomised corruption of valid GGUF files. Every mutated buffer must either
// parse or fail with a status (DATA_LOSS / UNIMPLEMENTED / INVALID_ARGUMENT)
// naming the file, and never crash; when it parses, every tensor's byte range
// and every metadata accessor is exercised so that AddressSanitizer (build
// with -DTESSERA_ASAN=ON) catches any read outside the buffer, which
// FromBuffer allocates at exactly the input's size.
//
// Deterministic for a given seed; runs for a time budget (default 10 s).
// TESSERA_FUZZ_SEED and TESSERA_FUZZ_SECONDS override both; a failure prints
// the seed and the iteration so it can be replayed.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "common/model_config.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

constexpr char kName[] = "fuzz.gguf";

// A second seed file with the shapes of a real model's metadata: a Llama
// config, a token list, merges, token types, and several tensor types.
std::string TinyModelBytes() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "fuzz");
  w.SetUint32("llama.block_count", 1);
  w.SetUint32("llama.context_length", 64);
  w.SetUint32("llama.embedding_length", 32);
  w.SetUint32("llama.feed_forward_length", 64);
  w.SetUint32("llama.attention.head_count", 4);
  w.SetUint32("llama.attention.head_count_kv", 2);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetFloat32("llama.rope.freq_base", 10000.0f);
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int i = 0; i < 16; ++i) {
    tokens.push_back("tok" + std::to_string(i));
    types.push_back(i < 2 ? 3 : 1);
  }
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", {"t o", "to k"});
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, GgmlType type,
                 std::string bytes) {
    EXPECT_TRUE(w.AddTensor(name, std::move(shape), type, std::move(bytes)).ok()) << name;
  };
  add("token_embd.weight", {32, 16}, GgmlType::kQ8_0, EncodeQ8_0(testing::RandomValues(512, 1)));
  add("blk.0.attn_norm.weight", {32}, GgmlType::kF32, EncodeF32(testing::RandomValues(32, 2)));
  add("blk.0.attn_q.weight", {32, 32}, GgmlType::kQ4_1, EncodeQ4_1(testing::RandomValues(1024, 3)));
  add("blk.0.ffn_up.weight", {32, 8}, GgmlType::kF16, EncodeF16(testing::RandomValues(256, 4)));
  add("blk.0.ffn_down.weight", {32, 8}, GgmlType::kBF16, EncodeBF16(testing::RandomValues(256, 5)));
  add("output_norm.weight", {32}, GgmlType::kF32, EncodeF32(testing::RandomValues(32, 6)));
  return w.Serialize();
}

// Boundary values for counts, lengths, offsets and type ids.
// clang-format off
constexpr uint64_t kInteresting[] = {
    0, 1, 2, 3, 4, 5, 31, 32, 64, 255, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
    0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, 0xffffffffffffffffull};
// clang-format on

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string Mutate(std::string b, size_t header_bytes) {
    const int rounds = 1 + Uniform(4);
    for (int r = 0; r < rounds; ++r) MutateOnce(&b, header_bytes);
    return b;
  }

 private:
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  // Structure lives in the header, so aim most mutations there.
  size_t Position(const std::string& b, size_t header_bytes) {
    if (b.empty()) return 0;
    const size_t limit =
        (Uniform(10) < 8 && header_bytes > 0) ? std::min(header_bytes, b.size()) : b.size();
    return Uniform(limit);
  }

  void MutateOnce(std::string* b, size_t header_bytes) {
    const size_t pos = Position(*b, header_bytes);
    switch (Uniform(8)) {
      case 0:  // bit flip
        if (!b->empty()) (*b)[pos] ^= static_cast<char>(1u << Uniform(8));
        break;
      case 1:  // byte set to 0, 0xff or random
        if (!b->empty()) {
          const uint64_t k = Uniform(3);
          (*b)[pos] = static_cast<char>(k == 0 ? 0 : k == 1 ? 0xff : Uniform(256));
        }
        break;
      case 2:  // truncation
        b->resize(Uniform(b->size() + 1));
        break;
      case 3: {  // insertion of random bytes
        std::string ins(1 + Uniform(16), '\0');
        for (char& c : ins) c = static_cast<char>(Uniform(256));
        b->insert(std::min(pos, b->size()), ins);
        break;
      }
      case 4:  // deletion of a range
        if (!b->empty()) b->erase(pos, 1 + Uniform(16));
        break;
      case 5:    // an interesting u32
      case 6: {  // an interesting u64 (or its low bytes)
        uint64_t v = kInteresting[Uniform(sizeof(kInteresting) / sizeof(kInteresting[0]))];
        if (Uniform(4) == 0) v += Uniform(3) - 1;  // off by one either way
        const size_t width = (Uniform(2) == 0) ? 4 : 8;
        for (size_t i = 0; i < width && pos + i < b->size(); ++i) {
          (*b)[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
        }
        break;
      }
      case 7:  // duplicate a chunk of the file over another place
        if (b->size() > 16) {
          const size_t from = Uniform(b->size() - 8);
          const size_t len = 1 + Uniform(std::min<size_t>(64, b->size() - from));
          const std::string chunk = b->substr(from, len);
          for (size_t i = 0; i < chunk.size() && pos + i < b->size(); ++i) (*b)[pos + i] = chunk[i];
        }
        break;
    }
  }

  std::mt19937_64 rng_;
};

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::strtoull(v, nullptr, 0) : fallback;
}

// Reads every byte of every tensor and calls every accessor on every key; the
// result is folded into a checksum so that none of it is optimised away.
uint64_t TouchEverything(const GgufFile& f) {
  uint64_t sum = 0;
  const uint8_t* begin = f.data();
  const uint8_t* end = f.data() + f.size();
  for (const GgufTensorInfo& t : f.tensors()) {
    const uint8_t* p = f.TensorData(t);
    EXPECT_GE(p, begin + f.header_bytes()) << t.name;
    EXPECT_LE(t.size_bytes, static_cast<uint64_t>(end - p)) << t.name;
    if (p < begin || t.size_bytes > static_cast<uint64_t>(end - p)) continue;
    for (uint64_t i = 0; i < t.size_bytes; ++i) sum += p[i];
  }
  for (const std::string& key : f.Keys()) {
    if (auto v = f.GetUint(key); v.ok()) sum += *v;
    if (auto v = f.GetInt(key); v.ok()) sum += static_cast<uint64_t>(*v);
    if (auto v = f.GetFloat(key); v.ok()) sum += static_cast<uint64_t>(*v != 0);
    if (auto v = f.GetBool(key); v.ok()) sum += *v;
    if (auto v = f.GetString(key); v.ok()) sum += v->size();
    if (auto v = f.GetStringArray(key); v.ok()) {
      for (const std::string& s : *v) sum += s.size();
    }
    if (auto v = f.GetIntArray(key); v.ok()) sum += v->size();
    if (auto v = f.GetFloatArray(key); v.ok()) sum += v->size();
    if (auto v = f.GetArrayLength(key); v.ok()) sum += *v;
  }
  if (auto c = ModelConfigFromGguf(f); c.ok()) sum += c->n_layer;
  return sum;
}

TEST(GgufFuzzTest, RandomMutationsNeverCrashOrReadOutOfBounds) {
  const uint64_t seed = EnvOr("TESSERA_FUZZ_SEED", 0x7e55e7a);
  const auto budget = std::chrono::seconds(EnvOr("TESSERA_FUZZ_SECONDS", 10));
  constexpr int kMinIterations = 3000;
  constexpr int kMaxIterations = 5000000;

  struct Seed {
    std::string bytes;
    size_t header_bytes;
  };
  std::vector<Seed> seeds;
  for (std::string bytes : {testing::SmallBytes(), TinyModelBytes()}) {
    auto f = GgufFile::FromBuffer(kName, bytes);
    ASSERT_TRUE(f.ok()) << f.status();
    seeds.push_back({bytes, (*f)->header_bytes()});
  }
  ASSERT_TRUE(ModelConfigFromGguf(**GgufFile::FromBuffer(kName, seeds[1].bytes)).ok());

  Mutator mutator(seed);
  std::map<absl::StatusCode, int> outcomes;
  uint64_t checksum = 0;
  int iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  for (; iterations < kMaxIterations; ++iterations) {
    if (iterations >= kMinIterations && iterations % 64 == 0 &&
        std::chrono::steady_clock::now() - start > budget) {
      break;
    }
    const Seed& s = seeds[iterations % seeds.size()];
    const std::string mutated = mutator.Mutate(s.bytes, s.header_bytes);
    auto f = GgufFile::FromBuffer(kName, mutated);
    ++outcomes[f.status().code()];
    if (f.ok()) {
      checksum += TouchEverything(**f);
    } else {
      const absl::StatusCode code = f.status().code();
      ASSERT_TRUE(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kUnimplemented ||
                  code == absl::StatusCode::kInvalidArgument)
          << "seed " << seed << " iteration " << iterations << ": " << f.status();
      ASSERT_EQ(f.status().message().substr(0, sizeof(kName) + 1), std::string(kName) + ": ")
          << "seed " << seed << " iteration " << iterations << ": " << f.status();
    }
    if (HasFailure()) {
      FAIL() << "seed " << seed << " iteration " << iterations;
    }
  }
  std::string summary;
  for (const auto& [code, n] : outcomes) {
    summary += absl::StatusCodeToString(code) + "=" + std::to_string(n) + " ";
  }
  std::printf("gguf fuzz: seed %#llx, %d iterations, outcomes: %s(checksum %llu)\n",
              static_cast<unsigned long long>(seed), iterations, summary.c_str(),
              static_cast<unsigned long long>(checksum));
  EXPECT_GE(iterations, kMinIterations);
  // Both outcomes must be common, or the mutations are not probing anything.
  EXPECT_GT(outcomes[absl::StatusCode::kOk], iterations / 50);
  EXPECT_GT(outcomes[absl::StatusCode::kDataLoss], iterations / 5);
}

}  // namespace
}  // namespace tessera
