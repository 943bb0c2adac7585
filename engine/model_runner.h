// Runs one step of a layer range over a batch of sequences.
//
// A step carries, for each sequence, a run of consecutive positions (a decode
// token or a prefill chunk) and its KV block table. All tokens of the step go
// through the matrix multiplies together; attention runs per sequence over
// that sequence's blocks. Because every kernel is batch-invariant, a token's
// hidden state and logits do not depend on what else is in the step, on how a
// prompt was chunked, or on the thread count.
//
// The first stage (range starting at layer 0) takes token ids; later stages
// take the previous stage's hidden states. The last stage (range ending at the
// final layer) produces logits for the tokens that ask for them; earlier
// stages produce hidden states. The single-process engine is one range
// covering every layer.
//
// Tensor parallelism: given the weights of one shard (ModelWeights::LoadShard)
// and that rank's Collective, the runner computes its share of every layer and
// joins the ranks with an all-reduce after the attention output and the down
// projections; embedding rows are vocabulary-split and all-reduced, and the
// logits are all-gathered, so every rank returns the same full StepOutput.
// Every rank of the group must call Forward with the same step.
//
// Thread-safety: one Forward at a time per runner (it owns scratch buffers
// and writes the KV cache).
#ifndef TESSERA_ENGINE_MODEL_RUNNER_H_
#define TESSERA_ENGINE_MODEL_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/collective.h"
#include "engine/step_runner.h"
#include "engine/kv_cache.h"
#include "engine/model_weights.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"

namespace tessera {

class ModelRunner final : public StepRunner {
 public:
  // `weights`, `kv`, `pool` and `collective` must outlive the runner.
  // `collective` joins the ranks when `weights` is a shard of a group of
  // size > 1 (its size must be the group's); it may be null otherwise.
  ModelRunner(const ModelWeights* weights, KvCache* kv, kernels::ThreadPool* pool,
              Collective* collective = nullptr);

  // Validates the step (INVALID_ARGUMENT naming the sequence and field: token
  // ids outside the vocabulary, positions past the context, block tables that
  // are short or name blocks outside the pool, a hidden-state input of the
  // wrong size) before touching any memory, then runs it. `hidden_in` is
  // required (total tokens × n_embd floats) unless this is the first stage.
  absl::Status Forward(absl::Span<const SequenceStep> seqs, absl::Span<const float> hidden_in,
                       StepOutput* out) override;

  const ModelConfig& model_config() const override { return weights_->model_config(); }
  LayerRange range() const override { return weights_->range(); }
  int64_t kv_blocks() const override { return kv_->num_blocks(); }
  uint64_t weight_bytes() const override { return weights_->weight_bytes(); }
  uint64_t kv_bytes() const override { return kv_->bytes(); }
  std::string device() const override { return "cpu"; }

  const ModelWeights& weights() const { return *weights_; }

 private:
  absl::Status Validate(absl::Span<const SequenceStep> seqs,
                        absl::Span<const float> hidden_in) const;
  absl::Status RunLayer(int layer, absl::Span<const SequenceStep> seqs, int64_t tokens);
  // Sums a partial result over the ranks (no-op when unsharded).
  absl::Status JoinRanks(float* data, int64_t n);
  // Logits [rows][vocab] from this rank's vocabulary rows of the LM head.
  absl::Status GatherLogits(int64_t rows, std::vector<float>* logits);

  const ModelWeights* weights_;
  KvCache* kv_;
  kernels::ThreadPool* pool_;
  Collective* collective_;
  kernels::RopeParams rope_;

  // Scratch, sized to the largest step seen.
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, ffn_;
  std::vector<float> local_logits_, padded_logits_, gathered_;
  std::vector<int32_t> positions_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_MODEL_RUNNER_H_
