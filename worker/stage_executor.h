// One pipeline stage's compute: the weights of an assigned layer range, a KV
// pool of the planned size, a thread pool and a ModelRunner, plus the
// bookkeeping that lets the stage check every step it is sent. With tp > 1
// the stage is a tensor-parallel group instead (TensorParallelRunner: tp
// ranks, each with its shard of the weights, its share of the KV heads and
// threads / tp kernel threads); the executor's interface is the same, and its
// byte counts are the sums over the ranks.
//
// The executor keeps, for each live sequence, how many positions of KV it
// holds. A step must continue a sequence exactly where it left off
// (start_pos == held positions) or restart it at position 0; anything else
// (an unknown sequence id, a gap, a rewind) is INVALID_ARGUMENT naming the
// sequence, before any memory is touched. A sequence sent non-finite hidden
// states fails alone. On the last stage it also samples,
// with the same counter-based sampler as the single-process engine, so a
// pipeline reproduces `tessera run` bit for bit.
//
// No gRPC here: stage_service.cc converts wire messages to these types.
//
// Thread-safety: one Run/Release at a time (the stage service calls it from
// the one thread that owns the upstream stream).
#ifndef TESSERA_WORKER_STAGE_EXECUTOR_H_
#define TESSERA_WORKER_STAGE_EXECUTOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/kv_cache.h"
#include "engine/sampler.h"
#include "engine/step_runner.h"
#include "engine/step_runner_factory.h"
#include "kernels/kernels.h"

namespace tessera {

struct StageOptions {
  LayerRange layers;
  // Where and how the layers run: the device, the tensor-parallel degree
  // (ranks the layers are split over, each with max(1, threads / tp) kernel
  // threads; 1 = one ModelRunner, the single-process engine's arithmetic bit
  // for bit), kernel threads including the caller's, and the KV pool: its
  // blocks, their size and element type (kF32 or kF16), the same on every
  // stage.
  RunnerOptions runner;
  // Largest number of tokens one step may carry.
  int32_t max_batch_tokens = 512;
};

// One sequence's share of a step, as the stage service decoded it.
struct StageSequence {
  SequenceStep step;
  std::string request_id;
  // Last stage: sample a token after the step's last position.
  bool sample = false;
  SamplingParams sampling;
  uint64_t rng_counter = 0;
  std::vector<int32_t> recent_tokens;
  bool want_logprob = false;
  // Last stage: report this many most likely tokens with the sample;
  // 0..kMaxTopLogprobs, anything else is refused by Run.
  int32_t top_logprobs = 0;
  // New sequence whose positions [0, start_pos) are already in its blocks
  // (the coordinator's prefix cache).
  bool prefix_cached = false;
};

struct StageSample {
  int64_t seq_id = 0;
  // Not OK when this sequence could not be sampled (its logits row held a
  // NaN or infinity): the request fails, the others in the step go on.
  absl::Status status;
  int32_t token_id = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top_logprobs;  // as asked for, most likely first
};

class StageExecutor {
 public:
  // Loads the range's weights from `file` (which must outlive the executor)
  // and allocates the KV pool. INVALID_ARGUMENT naming the numbers when tp
  // does not fit the model (CheckTensorParallel).
  static absl::StatusOr<std::unique_ptr<StageExecutor>> Create(const GgufFile& file,
                                                               const ModelConfig& config,
                                                               const StageOptions& options);

  bool is_first() const { return options_.layers.begin == 0; }
  bool is_last() const { return options_.layers.end == config_.n_layer; }
  int n_embd() const { return config_.n_embd; }
  LayerRange range() const { return options_.layers; }
  int tp() const { return options_.runner.tp; }
  // Tensor bytes the stage holds, summed over its ranks (a shard counts the
  // norms it replicates); on the device for CUDA.
  uint64_t weight_bytes() const { return runner_->weight_bytes(); }
  // KV pool bytes, summed over its ranks.
  uint64_t kv_bytes() const { return runner_->kv_bytes(); }
  // What runs the layers: "cpu", "cpu, tp 2", "cuda:0".
  std::string device() const { return runner_->device(); }
  int64_t kv_blocks() const { return options_.runner.kv_blocks; }
  kernels::DType kv_dtype() const { return options_.runner.kv_dtype; }
  int64_t live_sequences() const { return static_cast<int64_t>(held_.size()); }

  // Validates and runs one step. `hidden_in` is [tokens][n_embd] unless this
  // is the first stage. A sequence whose rows of it hold a NaN or infinity
  // does not run: it gets a sample with a DATA_LOSS status naming it (on any
  // stage; its KV is untouched), and the step goes on without it. Non-last
  // stages fill `hidden_out` with the rows of the sequences that ran, in
  // step order; the last stage also fills `samples` with one per sequence
  // with sample set (after the refused ones, in step order), never sampling
  // from a non-finite logits row (that sample carries an INTERNAL status
  // instead).
  absl::Status Run(absl::Span<const StageSequence> seqs, absl::Span<const float> hidden_in,
                   std::vector<float>* hidden_out, std::vector<StageSample>* samples);

  // Forgets sequences; unknown ids are ignored (a release may follow a
  // failed step that never created the sequence here).
  void Release(absl::Span<const int64_t> seq_ids);
  // Forgets every sequence (a new replica epoch: the blocks are free for
  // the scheduler to hand out again).
  void ReleaseAll();

 private:
  StageExecutor() = default;
  absl::Status Validate(absl::Span<const StageSequence> seqs) const;

  ModelConfig config_;
  StageOptions options_;
  std::unique_ptr<StepRunner> runner_;
  // seq id -> positions of KV this stage holds for it.
  absl::flat_hash_map<int64_t, int32_t> held_;
  std::vector<SequenceStep> steps_;  // scratch
  StepOutput out_;                   // scratch
};

}  // namespace tessera

#endif  // TESSERA_WORKER_STAGE_EXECUTOR_H_
