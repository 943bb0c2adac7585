// The sampling parameters of a request and their valid ranges.
//
// A plain value shared by the engine (which samples) and the coordinator
// (which validates client requests before any work starts and carries the
// parameters to the last stage). Thread-safe: pure data and a pure function.
#ifndef TESSERA_COMMON_SAMPLING_PARAMS_H_
#define TESSERA_COMMON_SAMPLING_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace tessera {

struct SamplingParams {
  // 0 = greedy. Must be in [0, 100].
  float temperature = 0.8f;
  // Keep the k most likely tokens; 0 = no limit. Must be >= 0.
  int32_t top_k = 40;
  // Keep the smallest set whose probability reaches top_p; 1 = off. (0, 1].
  float top_p = 0.95f;
  // Drop tokens less likely than min_p × the top token's probability; [0, 1].
  float min_p = 0.05f;
  // 1 = off; must be > 0.
  float repetition_penalty = 1.0f;
  // How many recent tokens the penalty looks at; >= 0.
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

// The most top-N entries a request may ask for per token: OpenAI's and
// vLLM's limit, and what the stage API accepts (stage.proto
// SequenceWork.top_logprobs). The one definition every layer uses.
inline constexpr int32_t kMaxTopLogprobs = 20;

// INVALID_ARGUMENT naming the first field out of range; `field`, when given,
// receives that field's name ("temperature", ...).
absl::Status ValidateSamplingParams(const SamplingParams& params, std::string* field = nullptr);

// Some sampling fields, each set or not: the values a model recommends (a
// Hugging Face generation_config.json, which never sets repeat_last_n or
// seed), or the fields a client or user actually gave. Applied over a base,
// the set fields replace the base's.
struct SamplingDefaults {
  std::optional<float> temperature;
  std::optional<int32_t> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<int32_t> repeat_last_n;
  std::optional<uint64_t> seed;

  bool empty() const {
    return !temperature && !top_k && !top_p && !min_p && !repetition_penalty &&
           !repeat_last_n && !seed;
  }
  SamplingParams Apply(SamplingParams base) const;
  // "temperature=0.6 top_p=0.9", or "none".
  std::string ToString() const;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_SAMPLING_PARAMS_H_
