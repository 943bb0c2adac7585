// The one interface every forward pass implements: run a step of a layer
// range over a batch of sequences. The CPU runner (model_runner.h), the
// CPU tensor-parallel group (tensor_parallel_runner.h) and the CUDA runner
// (cuda/cuda_model_runner.h) are StepRunners; which one a worker or `tessera
// run` gets is decided once, by CreateStepRunner (step_runner_factory.h),
// from --device and --tp.
//
// The contract of Forward, for every implementation:
// - A step carries, for each sequence, a run of consecutive positions (a
//   decode token or a prefill chunk) and its KV block table. The first stage
//   (range starting at layer 0) takes token ids; later stages take the
//   previous stage's hidden states, [total tokens][n_embd] floats.
// - The step is checked before any memory is touched (ValidateStep,
//   step_validation.h): INVALID_ARGUMENT naming the sequence and field.
// - The last stage (range ending at the final layer) returns logits for the
//   rows each sequence's LogitsMode asks for, in sequence then token order;
//   other stages return the hidden states of every token.
// - A token's result does not depend on what else is in the step, on how a
//   prompt was chunked or on the thread count (batch-invariant kernels).
//
// Thread-safety: one Forward at a time per runner (it owns scratch buffers
// and writes the KV cache).
#ifndef TESSERA_ENGINE_STEP_RUNNER_H_
#define TESSERA_ENGINE_STEP_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/model_config.h"

namespace tessera {

// Which of a sequence's tokens need logits on the last stage.
enum class LogitsMode { kNone, kLast, kAll };

struct SequenceStep {
  int64_t seq_id = 0;
  // Token ids at positions start_pos .. start_pos + num_tokens - 1. Needed on
  // the first stage; later stages only use num_tokens.
  std::vector<int32_t> tokens;
  int32_t num_tokens = 0;
  int32_t start_pos = 0;
  std::vector<int32_t> block_table;
  LogitsMode logits = LogitsMode::kLast;
};

struct StepOutput {
  // Hidden states [total tokens][n_embd] (stages that are not last).
  std::vector<float> hidden;
  // Logit rows [rows][vocab], in sequence order, then token order (last stage).
  std::vector<float> logits;
  int64_t logit_rows = 0;
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;

  virtual absl::Status Forward(absl::Span<const SequenceStep> seqs,
                               absl::Span<const float> hidden_in, StepOutput* out) = 0;

  // The whole model's shapes (not a shard's).
  virtual const ModelConfig& model_config() const = 0;
  virtual LayerRange range() const = 0;
  // KV blocks a block table may name.
  virtual int64_t kv_blocks() const = 0;
  // Bytes of weights and of KV pool this runner holds (summed over a
  // tensor-parallel group's ranks; on the device for CUDA).
  virtual uint64_t weight_bytes() const = 0;
  virtual uint64_t kv_bytes() const = 0;
  // What runs the step, for logs and status: "cpu", "cpu, tp 2", "cuda:0".
  virtual std::string device() const = 0;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_STEP_RUNNER_H_
