// Randomised corruption of Hugging Face config.json files, read through the
// whole directory path (OpenModelFile: config.json, the safetensors shards,
// the GGUF view; then ModelConfigFromGguf). Every mutated config must either
// open or fail with a status naming the directory or config.json, and never
// crash; when it opens, every tensor's bytes are read (which also runs the
// Llama Q/K re-layout), so AddressSanitizer catches any range the view gets
// wrong. The safetensors files themselves are fuzzed by
// safetensors_fuzz_test.cc.
//
// The seeds are the real directories of tests/golden/arch (Llama 3 with
// llama3 RoPE scaling, Qwen2, GLM-4). Mutations are structured (a known key
// set to a boundary value, another JSON type or removed) and textual (bytes
// flipped, inserted or deleted). Deterministic for a given seed; runs for a
// time budget (default 4 s). TESSERA_FUZZ_SEED and TESSERA_FUZZ_SECONDS
// override both; a failure prints the seed, iteration and config text.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/safetensors/model_source.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/safetensors/safetensors_test_util.h"

namespace tessera {
namespace {

using nlohmann::json;

const char* const kKeys[] = {
    "architectures", "hidden_size", "intermediate_size", "num_attention_heads",
    "num_key_value_heads", "num_hidden_layers", "vocab_size", "max_position_embeddings",
    "rms_norm_eps", "rope_theta", "head_dim", "tie_word_embeddings", "rope_scaling",
    "partial_rotary_factor", "attention_bias", "sliding_window", "use_sliding_window",
    "mlp_bias"};

// Values at the edges of every check: zero, negatives, sizes that divide or
// not, the integer limits, fractions, and every other JSON type.
json RandomValue(std::mt19937_64& rng) {
  static const std::vector<json> kValues = {
      0, 1, -1, 2, 3, 4, 8, 16, 32, 63, 64, 65, 128, 160, 320, 321, 4096, 2147483647,
      2147483648LL, 9223372036854775807LL, 18446744073709551615ULL, 0.5, 0.3, 1.5, 1e-5, 1e300,
      -0.0, nullptr, true, false, "x", "LlamaForCausalLM", json::array(),
      json::array({"Qwen2ForCausalLM"}), json::array({"Glm4ForCausalLM"}),
      json::array({"MistralForCausalLM"}), json::array({"GPTNeoXForCausalLM"}),
      json::array({1}), json::object(),
      json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}},
      json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0},
           {"high_freq_factor", 1.0}, {"original_max_position_embeddings", 0}},
      json{{"type", "linear"}, {"factor", 0.0}}, json{{"rope_type", "yarn"}, {"factor", 2.0}}};
  return kValues[std::uniform_int_distribution<size_t>(0, kValues.size() - 1)(rng)];
}

std::string Mutate(const json& seed, std::mt19937_64& rng) {
  auto uniform = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  json j = seed;
  const int rounds = 1 + static_cast<int>(uniform(3));
  for (int r = 0; r < rounds; ++r) {
    const std::string key = kKeys[uniform(sizeof(kKeys) / sizeof(kKeys[0]))];
    if (uniform(5) == 0) {
      j.erase(key);
    } else {
      j[key] = RandomValue(rng);
    }
  }
  std::string text = j.dump(1);
  if (uniform(4) == 0 && !text.empty()) {  // and sometimes break the text itself
    static const char kBytes[] = "{}[],:\"0123456789-.eE \\";
    const size_t at = uniform(text.size());
    switch (uniform(3)) {
      case 0: text[at] = kBytes[uniform(sizeof(kBytes) - 1)]; break;
      case 1: text.erase(at, 1 + uniform(4)); break;
      default: text.resize(at); break;
    }
  }
  return text;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(HfDirectoryFuzzTest, MutatedConfigsNeverCrash) {
  const uint64_t seed = EnvOr("TESSERA_FUZZ_SEED", 20261124);
  const double seconds = static_cast<double>(EnvOr("TESSERA_FUZZ_SECONDS", 4));
  std::mt19937_64 rng(seed);
  testing::TempDir dir;
  struct Seed {
    std::string name;
    json config;
  };
  std::vector<Seed> seeds;
  for (const char* name : {"llama3", "qwen2", "glm4"}) {
    const std::string src = std::string(TESSERA_SOURCE_DIR) + "/tests/golden/arch/" + name + "_hf";
    const std::string dst = dir.File(name);
    ASSERT_EQ(::mkdir(dst.c_str(), 0755), 0) << dst;
    // The weights are shared, never rewritten: only config.json mutates.
    ASSERT_EQ(::symlink((src + "/model.safetensors").c_str(), (dst + "/model.safetensors").c_str()),
              0);
    seeds.push_back({name, json::parse(ReadAll(src + "/config.json"))});
    // The unmutated directory must open, or the fuzzing proves nothing.
    testing::WriteFile(dst + "/config.json", seeds.back().config.dump());
    auto file = OpenModelFile(dst);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE(ModelConfigFromGguf(**file).ok());
  }

  const auto start = std::chrono::steady_clock::now();
  uint64_t iterations = 0, opened = 0, checksum = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    const Seed& s = seeds[iterations % seeds.size()];
    const std::string path = dir.File(s.name);
    const std::string config = Mutate(s.config, rng);
    testing::WriteFile(path + "/config.json", config);
    auto file = OpenModelFile(path);
    ++iterations;
    const std::string context = "seed " + std::to_string(seed) + " iteration " +
                                std::to_string(iterations) + " config:\n" + config;
    if (!file.ok()) {
      const std::string msg(file.status().message());
      ASSERT_TRUE(msg.find(path) != std::string::npos) << file.status() << "\n" << context;
      continue;
    }
    auto c = ModelConfigFromGguf(**file);
    ASSERT_TRUE(c.ok()) << "the view accepted a config its own metadata refuses: " << c.status()
                        << "\n" << context;
    ++opened;
    for (const GgufTensorInfo& t : (*file)->tensors()) {
      const uint8_t* p = (*file)->TensorData(t);
      for (uint64_t i = 0; i < t.size_bytes; i += 61) checksum += p[i];
      if (t.size_bytes > 0) checksum += p[t.size_bytes - 1];
    }
  }
  std::printf("config.json fuzz: %llu iterations, %llu opened, checksum %llu\n",
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(opened),
              static_cast<unsigned long long>(checksum));
  EXPECT_GT(iterations, 50u);
  EXPECT_GT(opened, 0u) << "no mutation kept the directory loadable; the seeds are too fragile";
}

}  // namespace
}  // namespace tessera
