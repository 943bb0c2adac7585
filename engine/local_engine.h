// One whole model in one process: the file, its weights (every layer), a KV
// cache, a thread pool and a runner. This is what `tessera run` drives, and
// the reference every distributed configuration must reproduce bit for bit.
//
// Thread-safety: one Generate/Forward at a time.
#ifndef TESSERA_ENGINE_LOCAL_ENGINE_H_
#define TESSERA_ENGINE_LOCAL_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "common/tokenizer/tokenizer.h"
#include "engine/sampler.h"
#include "engine/step_runner.h"
#include "engine/step_runner_factory.h"
#include "kernels/kernels.h"

namespace tessera {

struct LocalEngineOptions {
  // Path of a GGUF model file.
  std::string model_path;
  // Kernel threads, including the caller's. >= 1.
  int threads = 1;
  // Longest sequence (prompt + generated tokens) the KV cache holds; 0 = the
  // model's context length capped at 4096.
  int64_t max_context = 0;
  // KV cache element type: kF32, or kF16 for half the memory (see KvCache).
  kernels::DType kv_dtype = kernels::DType::kF32;
  // Where the forward pass runs, and over how many CPU ranks
  // (step_runner_factory.h).
  Device device;
  int tp = 1;
};

struct GenerateOptions {
  int32_t max_tokens = 128;
  SamplingParams sampling;
  // Prompt tokens per prefill step. Any value gives the same tokens.
  int32_t prefill_chunk = 256;
  // Stop at the model's end-of-generation tokens (not emitted).
  bool stop_at_end_of_generation = true;
  // Report each token's log-probability to on_token (NaN otherwise).
  bool logprobs = false;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  // "length" (max_tokens reached), "stop" (end-of-generation token) or
  // "cancelled" (the callback asked to stop).
  std::string finish_reason;
};

class LocalEngine {
 public:
  static absl::StatusOr<std::unique_ptr<LocalEngine>> Open(const LocalEngineOptions& options);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& file() const { return *file_; }
  int64_t max_context() const { return max_context_; }

  // Generates after `prompt`. `on_token(id, logprob)` sees each generated
  // token as it is sampled and returns false to stop. INVALID_ARGUMENT for an
  // empty prompt, bad sampling parameters, or prompt + max_tokens beyond
  // max_context (both numbers named).
  absl::StatusOr<GenerateStats> Generate(
      const std::vector<int32_t>& prompt, const GenerateOptions& options,
      const std::function<bool(int32_t id, float logprob)>& on_token);

  // Runs `tokens` through the model as one fresh sequence, prefilled in
  // chunks of `chunk`, and returns the logits of every position
  // ([tokens][vocab]). Used for teacher-forced comparisons.
  absl::StatusOr<std::vector<float>> PromptLogits(const std::vector<int32_t>& tokens,
                                                  int32_t chunk);

 private:
  LocalEngine() = default;
  // The one sequence a LocalEngine runs owns the whole KV pool.
  std::vector<int32_t> WholePoolTable() const;
  // Runs `tokens` from position 0 in chunks. With all_logits, every
  // position's logits are appended to `logits`; otherwise `out` holds the last
  // position's logits.
  absl::Status Prefill(const std::vector<int32_t>& tokens, int32_t chunk, bool all_logits,
                       std::vector<float>* logits, StepOutput* out);

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<StepRunner> runner_;
  int64_t max_context_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_LOCAL_ENGINE_H_
