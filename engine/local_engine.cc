#include "engine/local_engine.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "common/safetensors/model_source.h"
#include "engine/kv_cache.h"

namespace tessera {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalEngine>> LocalEngine::Open(
    const LocalEngineOptions& options) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("threads = %d; must be at least 1", options.threads));
  }
  std::unique_ptr<LocalEngine> e(new LocalEngine());
  ASSIGN_OR_RETURN(e->file_, OpenModelFile(options.model_path));
  ASSIGN_OR_RETURN(e->config_, ModelConfigFromGguf(*e->file_));
  ASSIGN_OR_RETURN(e->tokenizer_, OpenModelTokenizer(options.model_path, *e->file_));
  e->max_context_ = options.max_context > 0
                        ? std::min<int64_t>(options.max_context, e->config_.context_length)
                        : std::min<int64_t>(e->config_.context_length, 4096);
  if (options.kv_dtype != kernels::DType::kF32 && options.kv_dtype != kernels::DType::kF16) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kv_dtype = %s; the KV cache holds f32 or f16", kernels::DTypeName(options.kv_dtype)));
  }
  RunnerOptions ro;
  ro.device = options.device;
  ro.tp = options.tp;
  ro.kv_blocks = (e->max_context_ + KvCache::kDefaultBlockSize - 1) / KvCache::kDefaultBlockSize;
  ro.kv_block_size = KvCache::kDefaultBlockSize;
  ro.kv_dtype = options.kv_dtype;
  ro.threads = options.threads;
  ASSIGN_OR_RETURN(e->runner_,
                   CreateStepRunner(*e->file_, e->config_, LayerRange{0, e->config_.n_layer}, ro));
  return e;
}

std::vector<int32_t> LocalEngine::WholePoolTable() const {
  std::vector<int32_t> table(runner_->kv_blocks());
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
  return table;
}

absl::Status LocalEngine::Prefill(const std::vector<int32_t>& tokens, int32_t chunk,
                                  bool all_logits, std::vector<float>* logits, StepOutput* out) {
  chunk = std::max<int32_t>(chunk, 1);
  const std::vector<int32_t> table = WholePoolTable();
  for (size_t pos = 0; pos < tokens.size(); pos += chunk) {
    SequenceStep s;
    s.num_tokens = static_cast<int32_t>(std::min<size_t>(chunk, tokens.size() - pos));
    s.tokens.assign(tokens.begin() + pos, tokens.begin() + pos + s.num_tokens);
    s.start_pos = static_cast<int32_t>(pos);
    s.block_table = table;
    const bool last_chunk = pos + s.num_tokens == tokens.size();
    s.logits = all_logits ? LogitsMode::kAll : last_chunk ? LogitsMode::kLast : LogitsMode::kNone;
    RETURN_IF_ERROR(runner_->Forward({s}, {}, out));
    if (logits != nullptr) logits->insert(logits->end(), out->logits.begin(), out->logits.end());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> LocalEngine::PromptLogits(const std::vector<int32_t>& tokens,
                                                             int32_t chunk) {
  if (tokens.empty() || static_cast<int64_t>(tokens.size()) > max_context_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt has %d tokens; must be 1..%d", tokens.size(), max_context_));
  }
  std::vector<float> logits;
  logits.reserve(tokens.size() * config_.vocab_size);
  StepOutput out;
  RETURN_IF_ERROR(Prefill(tokens, chunk, /*all_logits=*/true, &logits, &out));
  return logits;
}

absl::StatusOr<GenerateStats> LocalEngine::Generate(
    const std::vector<int32_t>& prompt, const GenerateOptions& options,
    const std::function<bool(int32_t, float)>& on_token) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  RETURN_IF_ERROR(ValidateSamplingParams(options.sampling));
  if (options.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_tokens = %d; must be >= 0", options.max_tokens));
  }
  const int64_t needed = static_cast<int64_t>(prompt.size()) + options.max_tokens;
  if (needed > max_context_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt (%d tokens) + max_tokens (%d) = %d exceeds the context limit of %d",
        prompt.size(), options.max_tokens, needed, max_context_));
  }
  GenerateStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  stats.finish_reason = "length";
  const std::vector<int32_t> table = WholePoolTable();
  std::vector<int32_t> history = prompt;

  auto start = std::chrono::steady_clock::now();
  StepOutput out;
  RETURN_IF_ERROR(Prefill(prompt, options.prefill_chunk, /*all_logits=*/false, nullptr, &out));
  stats.prefill_seconds = Seconds(start);
  if (options.max_tokens == 0) return stats;

  start = std::chrono::steady_clock::now();
  const int64_t vocab = config_.vocab_size;
  for (int32_t i = 0; i < options.max_tokens; ++i) {
    const SampledToken tok =
        Sample(absl::MakeConstSpan(out.logits.data(), vocab), options.sampling, history, i,
               options.logprobs);
    if (options.stop_at_end_of_generation && tokenizer_->IsEndOfGeneration(tok.id)) {
      stats.finish_reason = "stop";
      break;
    }
    ++stats.generated_tokens;
    history.push_back(tok.id);
    if (!on_token(tok.id, tok.logprob)) {
      stats.finish_reason = "cancelled";
      break;
    }
    if (i + 1 == options.max_tokens) break;
    SequenceStep s;
    s.num_tokens = 1;
    s.tokens = {tok.id};
    s.start_pos = static_cast<int32_t>(history.size() - 1);
    s.block_table = table;
    s.logits = LogitsMode::kLast;
    RETURN_IF_ERROR(runner_->Forward({s}, {}, &out));
  }
  stats.decode_seconds = Seconds(start);
  return stats;
}

}  // namespace tessera
