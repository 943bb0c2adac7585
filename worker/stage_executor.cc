#include "worker/stage_executor.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/finite_check.h"

namespace tessera {
namespace {

// The sample of a sequence that could not be sampled, with why.
StageSample Refused(int64_t seq_id, absl::Status why) {
  StageSample refused;
  refused.seq_id = seq_id;
  refused.status = std::move(why);
  return refused;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StageExecutor>> StageExecutor::Create(
    const GgufFile& file, const ModelConfig& config, const StageOptions& options) {
  if (options.runner.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("threads = %d; must be at least 1", options.runner.threads));
  }
  if (options.runner.kv_blocks < 1 || options.runner.kv_block_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kv_blocks = %d, kv_block_size = %d; both must be at least 1", options.runner.kv_blocks,
        options.runner.kv_block_size));
  }
  if (options.max_batch_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "max_batch_tokens = %d; must be at least 1", options.max_batch_tokens));
  }
  if (options.runner.kv_dtype != kernels::DType::kF32 && options.runner.kv_dtype != kernels::DType::kF16) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kv_dtype = %s; the KV cache holds f32 or f16", kernels::DTypeName(options.runner.kv_dtype)));
  }
  if (options.runner.tp < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor-parallel degree %d must be at least 1", options.runner.tp));
  }
  std::unique_ptr<StageExecutor> e(new StageExecutor());
  e->config_ = config;
  e->options_ = options;
  ASSIGN_OR_RETURN(e->runner_, CreateStepRunner(file, config, options.layers, options.runner));
  return e;
}

absl::Status StageExecutor::Validate(absl::Span<const StageSequence> seqs) const {
  absl::flat_hash_set<int64_t> seen;
  int64_t total = 0;
  for (const StageSequence& s : seqs) {
    const SequenceStep& st = s.step;
    if (!seen.insert(st.seq_id).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("sequence %d appears twice in one step", st.seq_id));
    }
    if (st.num_tokens < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: num_tokens = %d; must be at least 1", st.seq_id, st.num_tokens));
    }
    if (st.start_pos < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: start_pos = %d is negative", st.seq_id, st.start_pos));
    }
    total += st.num_tokens;
    // Checked on every stage, sampling or not: a count from the wire sizes
    // an allocation on the last one.
    if (s.top_logprobs < 0 || s.top_logprobs > kMaxTopLogprobs) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: top_logprobs = %d; must be in [0, %d]", st.seq_id, s.top_logprobs,
          kMaxTopLogprobs));
    }
    if (s.prefix_cached && held_.contains(st.seq_id)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: prefix_cached is set but this stage already holds the sequence; only a "
          "new sequence may start past reused blocks",
          st.seq_id));
    }
    if (st.start_pos > 0 && !s.prefix_cached) {
      auto it = held_.find(st.seq_id);
      if (it == held_.end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "unknown sequence id %d: start_pos = %d but this stage holds no positions for it "
            "(a new sequence starts at position 0)",
            st.seq_id, st.start_pos));
      }
      if (it->second != st.start_pos) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "sequence %d: start_pos = %d but this stage holds positions 0..%d; a step must "
            "continue at %d or restart at 0",
            st.seq_id, st.start_pos, it->second - 1, it->second));
      }
    }
    if (is_last() && s.sample) {
      absl::Status valid = ValidateSamplingParams(s.sampling);
      if (!valid.ok()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("sequence %d: %s", st.seq_id, valid.message()));
      }
    }
  }
  if (total > options_.max_batch_tokens) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "step carries %d tokens; this stage was sized for at most %d (max_batch_tokens)", total,
        options_.max_batch_tokens));
  }
  return absl::OkStatus();
}

absl::Status StageExecutor::Run(absl::Span<const StageSequence> seqs,
                                absl::Span<const float> hidden_in,
                                std::vector<float>* hidden_out,
                                std::vector<StageSample>* samples) {
  samples->clear();
  hidden_out->clear();
  if (seqs.empty()) {
    if (!hidden_in.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "step has no sequences but carries %d hidden values", hidden_in.size()));
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Validate(seqs));
  // A sequence whose hidden states hold a NaN or infinity is dropped from
  // the step and fails alone (a numerical fault upstream, or a faulty
  // peer); the others run as if it had never been sent.
  std::vector<StageSequence> kept;
  std::vector<float> kept_hidden;
  if (!hidden_in.empty() && FirstNonFinite(hidden_in) >= 0) {
    int64_t total = 0;
    for (const StageSequence& s : seqs) total += s.step.num_tokens;
    if (static_cast<int64_t>(hidden_in.size()) == total * config_.n_embd) {
      size_t row = 0;
      for (const StageSequence& s : seqs) {
        const size_t n = static_cast<size_t>(s.step.num_tokens) * config_.n_embd;
        const absl::Span<const float> mine = hidden_in.subspan(row * config_.n_embd, n);
        if (const int64_t bad = FirstNonFinite(mine); bad >= 0) {
          samples->push_back(Refused(
              s.step.seq_id,
              absl::DataLossError(absl::StrFormat(
                  "sequence %d (request %s): its hidden state for position %d holds %f; "
                  "refusing non-finite activations from the previous stage",
                  s.step.seq_id, s.request_id, s.step.start_pos + bad / config_.n_embd,
                  mine[bad]))));
        } else {
          kept.push_back(s);
          kept_hidden.insert(kept_hidden.end(), mine.begin(), mine.end());
        }
        row += s.step.num_tokens;
      }
      if (kept.empty()) return absl::OkStatus();
      seqs = kept;
      hidden_in = kept_hidden;
    }
  }
  steps_.clear();
  for (const StageSequence& s : seqs) {
    steps_.push_back(s.step);
    steps_.back().logits = is_last() && s.sample ? LogitsMode::kLast : LogitsMode::kNone;
  }
  // ModelRunner::Forward checks token ids, positions against the context,
  // block tables against the pool and the hidden-state size.
  RETURN_IF_ERROR(runner_->Forward(steps_, hidden_in, &out_));
  for (const StageSequence& s : seqs) held_[s.step.seq_id] = s.step.start_pos + s.step.num_tokens;

  if (!is_last()) {
    *hidden_out = std::move(out_.hidden);
    out_.hidden.clear();
    return absl::OkStatus();
  }
  const int64_t vocab = config_.vocab_size;
  int64_t row = 0;
  for (const StageSequence& s : seqs) {
    if (!s.sample) continue;
    const absl::Span<const float> logits =
        absl::MakeConstSpan(out_.logits.data() + row * vocab, vocab);
    ++row;
    if (const int64_t bad = FirstNonFinite(logits); bad >= 0) {
      samples->push_back(Refused(
          s.step.seq_id,
          absl::InternalError(absl::StrFormat(
              "sequence %d (request %s): the logits for position %d hold %f (token id %d); a "
              "numerical fault, not sampled",
              s.step.seq_id, s.request_id, s.step.start_pos + s.step.num_tokens - 1,
              logits[bad], bad))));
      continue;
    }
    SampledToken tok = Sample(logits, s.sampling, s.recent_tokens, s.rng_counter,
                              s.want_logprob, s.top_logprobs);
    StageSample sample;
    sample.seq_id = s.step.seq_id;
    sample.token_id = tok.id;
    sample.logprob = tok.logprob;
    sample.top_logprobs = std::move(tok.top_logprobs);
    samples->push_back(std::move(sample));
  }
  return absl::OkStatus();
}

void StageExecutor::Release(absl::Span<const int64_t> seq_ids) {
  for (int64_t id : seq_ids) held_.erase(id);
}

void StageExecutor::ReleaseAll() { held_.clear(); }

}  // namespace tessera
