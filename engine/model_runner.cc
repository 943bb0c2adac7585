#include "engine/model_runner.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/step_validation.h"

namespace tessera {

ModelRunner::ModelRunner(const ModelWeights* weights, KvCache* kv, kernels::ThreadPool* pool,
                         Collective* collective)
    : weights_(weights), kv_(kv), pool_(pool), collective_(collective) {
  const ModelConfig& c = weights_->config();
  rope_.head_dim = c.head_dim;
  rope_.rot_dim = c.rope_dim;
  rope_.freq_base = c.rope_freq_base;
  rope_.freq_factors = weights_->rope_freq_factors();
  rope_.neox = c.rope_neox;
}

namespace {

// x[t][i] += bias[i] for every token: the Q/K/V biases of qwen2 and glm4,
// added after the projection as llama.cpp does.
void AddBias(const float* bias, int64_t tokens, int64_t dim, float* x) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < tokens; ++t) kernels::Add(bias, dim, x + t * dim);
}

}  // namespace

absl::Status ModelRunner::Validate(absl::Span<const SequenceStep> seqs,
                                   absl::Span<const float> hidden_in) const {
  const ModelConfig& c = weights_->config();
  const ShardSpec shard = weights_->shard();
  if (shard.size > 1 && (collective_ == nullptr || collective_->size() != shard.size ||
                         collective_->rank() != shard.rank)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the weights are shard %d of %d but the runner's collective is %s", shard.rank,
        shard.size,
        collective_ == nullptr
            ? std::string("missing")
            : absl::StrFormat("rank %d of %d", collective_->rank(), collective_->size())));
  }
  StepShapeLimits limits;
  limits.context_length = c.context_length;
  limits.vocab_size = c.vocab_size;
  limits.n_embd = c.n_embd;
  limits.first_stage = weights_->has_embedding();
  limits.kv_blocks = kv_->num_blocks();
  limits.block_size = kv_->block_size();
  return ValidateStep(limits, seqs, hidden_in);
}

absl::Status ModelRunner::Forward(absl::Span<const SequenceStep> seqs,
                                  absl::Span<const float> hidden_in, StepOutput* out) {
  RETURN_IF_ERROR(Validate(seqs, hidden_in));
  const ModelConfig& c = weights_->config();
  const int64_t d = c.n_embd;
  int64_t tokens = 0;
  for (const SequenceStep& s : seqs) tokens += s.num_tokens;

  x_.resize(tokens * d);
  positions_.resize(tokens);
  {
    // A shard holds some vocabulary rows; the others contribute zeros, so the
    // all-reduce below reproduces each embedding row exactly.
    const IndexRange vocab = weights_->vocab_rows();
    int64_t t = 0;
    for (const SequenceStep& s : seqs) {
      for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
        positions_[t] = s.start_pos + i;
        if (!weights_->has_embedding()) continue;
        if (s.tokens[i] >= vocab.begin && s.tokens[i] < vocab.end) {
          kernels::DequantizeRow(weights_->token_embedding(), s.tokens[i] - vocab.begin,
                                 &x_[t * d]);
        } else {
          std::fill(&x_[t * d], &x_[t * d] + d, 0.0f);
        }
      }
    }
  }
  if (weights_->has_embedding()) {
    RETURN_IF_ERROR(JoinRanks(x_.data(), tokens * d));
  } else {
    std::copy(hidden_in.begin(), hidden_in.end(), x_.begin());
  }

  const LayerRange range = weights_->range();
  for (int l = range.begin; l < range.end; ++l) RETURN_IF_ERROR(RunLayer(l, seqs, tokens));

  out->hidden.clear();
  out->logits.clear();
  out->logit_rows = 0;
  if (!weights_->has_head()) {
    out->hidden = x_;
    return absl::OkStatus();
  }
  // Gather the rows that need logits, normalise them, and apply the LM head.
  std::vector<int64_t> rows;
  {
    int64_t t = 0;
    for (const SequenceStep& s : seqs) {
      if (s.logits == LogitsMode::kAll) {
        for (int32_t i = 0; i < s.num_tokens; ++i) rows.push_back(t + i);
      } else if (s.logits == LogitsMode::kLast) {
        rows.push_back(t + s.num_tokens - 1);
      }
      t += s.num_tokens;
    }
  }
  const int64_t n = static_cast<int64_t>(rows.size());
  h_.resize(n * d);
  for (int64_t r = 0; r < n; ++r) {
    std::copy(&x_[rows[r] * d], &x_[rows[r] * d] + d, &h_[r * d]);
  }
  kernels::RmsNorm(h_.data(), weights_->output_norm(), n, d, c.rms_eps, h_.data());
  if (weights_->shard().size == 1) {
    out->logits.resize(n * c.vocab_size);
    kernels::MatMul(weights_->output(), h_.data(), n, out->logits.data(), pool_);
  } else {
    RETURN_IF_ERROR(GatherLogits(n, &out->logits));
  }
  out->logit_rows = n;
  return absl::OkStatus();
}

absl::Status ModelRunner::JoinRanks(float* data, int64_t n) {
  if (weights_->shard().size == 1) return absl::OkStatus();
  return collective_->AllReduceSum(data, n);
}

absl::Status ModelRunner::GatherLogits(int64_t rows, std::vector<float>* logits) {
  const int64_t vocab = weights_->config().vocab_size;
  const int tp = weights_->shard().size;
  const int64_t local = weights_->output().rows;
  // Every rank contributes the same padded size; the last rank may hold fewer rows.
  const int64_t per = VocabRowsPerRank(vocab, tp);
  local_logits_.resize(rows * local);
  padded_logits_.assign(rows * per, 0.0f);
  gathered_.resize(static_cast<size_t>(tp) * rows * per);
  kernels::MatMul(weights_->output(), h_.data(), rows, local_logits_.data(), pool_);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(&local_logits_[r * local], &local_logits_[r * local] + local,
              &padded_logits_[r * per]);
  }
  RETURN_IF_ERROR(
      collective_->AllGather(padded_logits_.data(), rows * per, gathered_.data()));
  logits->resize(rows * vocab);
  for (int k = 0; k < tp; ++k) {
    const IndexRange part = VocabShard(vocab, ShardSpec{k, tp});
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = &gathered_[(static_cast<int64_t>(k) * rows + r) * per];
      std::copy(src, src + part.size(), &(*logits)[r * vocab + part.begin]);
    }
  }
  return absl::OkStatus();
}

absl::Status ModelRunner::RunLayer(int layer, absl::Span<const SequenceStep> seqs,
                                   int64_t tokens) {
  const ModelConfig& c = weights_->config();
  const LayerWeights& w = weights_->layer(layer);
  const int64_t d = c.n_embd;
  const int64_t q_dim = static_cast<int64_t>(c.n_head) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_head) * c.head_dim;
  h_.resize(tokens * d);
  q_.resize(tokens * q_dim);
  k_.resize(tokens * kv_dim);
  v_.resize(tokens * kv_dim);
  attn_.resize(tokens * q_dim);
  gate_.resize(tokens * c.n_ff);
  up_.resize(tokens * c.n_ff);
  ffn_.resize(tokens * d);

  // Attention block.
  kernels::RmsNorm(x_.data(), w.attn_norm, tokens, d, c.rms_eps, h_.data());
  // One pool dispatch for Q/K/V (and below gate/up): same input, and
  // MatMulShared falls back to separate calls when the formats differ.
  {
    const kernels::WeightMatrix qkv[] = {w.wq, w.wk, w.wv};
    float* const out[] = {q_.data(), k_.data(), v_.data()};
    kernels::MatMulShared(qkv, 3, h_.data(), tokens, out, pool_);
  }
  AddBias(w.bq, tokens, q_dim, q_.data());
  AddBias(w.bk, tokens, kv_dim, k_.data());
  AddBias(w.bv, tokens, kv_dim, v_.data());
  kernels::Rope(q_.data(), positions_.data(), tokens, c.n_head, rope_);
  kernels::Rope(k_.data(), positions_.data(), tokens, c.n_kv_head, rope_);
  const kernels::KvLayer kv = kv_->layer(layer);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  int64_t t = 0;
  for (const SequenceStep& s : seqs) {
    kernels::KvWrite(kv, s.block_table.data(), &positions_[t], s.num_tokens, &k_[t * kv_dim],
                     &v_[t * kv_dim]);
    kernels::Attention(&q_[t * q_dim], &positions_[t], s.num_tokens, c.n_head, kv,
                       s.block_table.data(), scale, &attn_[t * q_dim], pool_);
    t += s.num_tokens;
  }
  kernels::MatMul(w.wo, attn_.data(), tokens, ffn_.data(), pool_);
  RETURN_IF_ERROR(JoinRanks(ffn_.data(), tokens * d));
  if (w.attn_post_norm != nullptr) {
    kernels::RmsNorm(ffn_.data(), w.attn_post_norm, tokens, d, c.rms_eps, ffn_.data());
  }
  kernels::Add(ffn_.data(), tokens * d, x_.data());

  // Feed-forward block.
  kernels::RmsNorm(x_.data(), w.ffn_norm, tokens, d, c.rms_eps, h_.data());
  {
    const kernels::WeightMatrix gate_up[] = {w.w_gate, w.w_up};
    float* const out[] = {gate_.data(), up_.data()};
    kernels::MatMulShared(gate_up, 2, h_.data(), tokens, out, pool_);
  }
  kernels::SwiGlu(gate_.data(), up_.data(), tokens * c.n_ff, gate_.data());
  kernels::MatMul(w.w_down, gate_.data(), tokens, ffn_.data(), pool_);
  RETURN_IF_ERROR(JoinRanks(ffn_.data(), tokens * d));
  if (w.ffn_post_norm != nullptr) {
    kernels::RmsNorm(ffn_.data(), w.ffn_post_norm, tokens, d, c.rms_eps, ffn_.data());
  }
  kernels::Add(ffn_.data(), tokens * d, x_.data());
  return absl::OkStatus();
}

}  // namespace tessera
