// The forward pass of a layer range on one GPU (llama, qwen2, glm4): the
// device twin of ModelRunner, a StepRunner (step_runner.h) for TP 1. A range
// that starts at layer 0 embeds token ids; a later one takes the previous
// stage's hidden states; a range that ends at the last layer makes logits,
// an earlier one returns hidden states. So `tessera-worker --device cuda`
// is a pipeline stage and `tessera run --device cuda` runs a whole model.
//
// Create() uploads the F32/F16/BF16/Q8_0/Q4_K weights of a ModelWeights to
// device memory and allocates a paged KV cache there with the layout of
// kernels::KvLayer (blocks of `block_size` positions; block tables as for the
// CPU KvCache, so the same BlockAllocator drives both). It refuses with
// UNIMPLEMENTED, naming the thing, what it does not implement: other
// quantised formats and head_dim above 256.
//
// Tensor parallelism: given a shard's weights (ModelWeights::LoadShard) and
// that rank's DeviceCollective, the runner is one rank of a group
// (CudaTensorParallelRunner drives the group): it holds its KV heads only,
// looks up its vocabulary rows of the embedding (zeros for the others),
// all-reduces the embedding, each attention output and each down projection
// (the row-parallel products), and all-gathers its vocabulary slice of the
// logits, so every rank ends a step with the whole model's hidden states or
// logits, as the CPU's ModelRunner does with a Collective.
// Every graph departure of ModelConfig is computed where ModelRunner computes
// it (Q/K/V biases after the projections, rotate-half and partial RoPE,
// post-norms before the residual adds), so llama (and Mistral), qwen2 and
// glm4 all run.
//
// Forward() has the StepRunner contract and validates the step with the
// same function as the CPU runners (ValidateStep) before touching device
// memory. All tokens of a step go
// through every matrix multiply together; KV writes and attention run in one
// launch per layer over all sequences (kernels::cuda::*Batch). Decode-shaped
// steps are replayed from CUDA graphs captured per (tokens, logit rows) once
// the shape has run eagerly; a graph is kept with every device address it
// baked in (scratch buffers, cuBLASLt's workspace and conversion scratch,
// which the runner sizes with its own), and all graphs are dropped when any
// of those moves (engine/step_graph_cache.h). ForwardDevice() leaves the
// logits on the device for device sampling.
//
// Thread-safety: one Forward at a time (it owns the stream, the scratch
// buffers and the KV cache).
#ifndef TESSERA_ENGINE_CUDA_CUDA_MODEL_RUNNER_H_
#define TESSERA_ENGINE_CUDA_CUDA_MODEL_RUNNER_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/cuda/device_collective.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "engine/step_runner.h"
#include "engine/step_graph_cache.h"
#include "kernels/cuda/blas_lt.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/stream.h"
#include "kernels/kernels.h"

namespace tessera {

struct CudaRunnerOptions {
  // The CUDA device (cudaSetDevice) this runner lives on.
  int device = 0;
  // KV blocks in the device pool (all sequences together).
  int64_t kv_blocks = 256;
  int block_size = 16;
  // kF32 or kF16 (half the memory; values rounded on write as on the CPU).
  kernels::DType kv_dtype = kernels::DType::kF32;
  // Replay decode-shaped steps (at most this many tokens) from CUDA graphs;
  // 0 disables graphs (so does a collective that cannot be captured).
  int64_t graph_max_tokens = 64;
};

class CudaModelRunner final : public StepRunner {
 public:
  // `weights` must outlive the runner only during Create (everything is
  // copied to the device). A shard's weights need `collective`, the rank's
  // endpoint of its group (same rank and size as the shard, on
  // options.device), which must outlive the runner; FAILED_PRECONDITION
  // otherwise. The unsplit model takes none.
  static absl::StatusOr<std::unique_ptr<CudaModelRunner>> Create(
      const ModelWeights& weights, const CudaRunnerOptions& options,
      DeviceCollective* collective = nullptr);
  ~CudaModelRunner() override;
  CudaModelRunner(const CudaModelRunner&) = delete;
  CudaModelRunner& operator=(const CudaModelRunner&) = delete;

  // StepRunner: hidden states in (later stages) and out (earlier stages),
  // or logits of every sequence's LogitsMode rows (the last stage).
  absl::Status Forward(absl::Span<const SequenceStep> seqs, absl::Span<const float> hidden_in,
                       StepOutput* out) override;
  const ModelConfig& model_config() const override { return model_config_; }
  LayerRange range() const override { return range_; }
  int64_t kv_blocks() const override { return options_.kv_blocks; }
  uint64_t weight_bytes() const override { return device_weight_bytes_; }
  uint64_t kv_bytes() const override { return kv_bytes_; }
  std::string device() const override;

  // As Forward on the last stage, but the logits [rows][vocab] stay on the
  // device (valid until the next step); returns the device pointer (nullptr
  // when not last) and sets *rows. Work is enqueued on stream(); the caller
  // synchronises (device sampling does).
  absl::StatusOr<const float*> ForwardDevice(absl::Span<const SequenceStep> seqs,
                                             absl::Span<const float> hidden_in, int64_t* rows);

  // The dimensions this rank computes with (a shard's heads and n_ff).
  const ModelConfig& config() const { return config_; }
  cudaStream_t stream() const { return stream_.get(); }
  // After ForwardDevice of a step of `tokens` tokens and `rows` logit rows:
  // copies its result (hidden states, or logits) into `out` and waits for
  // the stream. Forward is ForwardDevice + ReadOutput.
  absl::Status ReadOutput(int64_t tokens, int64_t rows, StepOutput* out);
  // Destroys every captured graph and captures no more: what a failed
  // tensor-parallel rank does before its NCCL communicators are aborted
  // (NCCL waits for the graphs holding their operations to go).
  void DropGraphs();
  // INVALID_ARGUMENT when `seqs` / `hidden_in` do not fit this runner
  // (ValidateStep); Forward checks it first, before any device work.
  absl::Status Validate(absl::Span<const SequenceStep> seqs,
                        absl::Span<const float> hidden_in) const;
  // Bytes of weights on the device, and of weights read per token (every
  // matrix plus one embedding row on the first stage): the numerator of the
  // decode roofline.
  uint64_t device_weight_bytes() const { return device_weight_bytes_; }
  uint64_t weight_bytes_read_per_token() const { return bytes_read_per_token_; }
  // Graph steps replayed so far, times every graph was dropped because a
  // baked-in address moved, and why capture was last given up (OK if never).
  int64_t graph_replays() const { return graph_replays_; }
  int64_t graph_invalidations() const { return graphs_.invalidations(); }
  const absl::Status& graph_status() const { return graph_status_; }

 private:
  struct DeviceLayer {
    kernels::WeightMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    // nullptr when the model has none (LayerWeights' optional vectors).
    const float* bq = nullptr;
    const float* bk = nullptr;
    const float* bv = nullptr;
    const float* attn_post_norm = nullptr;
    const float* ffn_post_norm = nullptr;
  };
  struct StepShape {
    int64_t tokens = 0;
    int64_t rows = 0;
    int64_t tables = 0;  // block-table entries of the step
  };
  // A captured, instantiated step.
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    ~Graph();
  };

  CudaModelRunner() = default;
  absl::Status Upload(const ModelWeights& weights);
  // The one place that reads LayerWeights.
  absl::StatusOr<DeviceLayer> UploadLayer(const LayerWeights& w, int layer);
  absl::StatusOr<kernels::WeightMatrix> UploadMatrix(const kernels::WeightMatrix& m,
                                                     const std::string& name);
  absl::StatusOr<const float*> UploadVector(const float* v, int64_t n);
  // Packs the step's integers into pinned memory and enqueues one copy.
  absl::StatusOr<StepShape> StageStep(absl::Span<const SequenceStep> seqs);
  absl::Status Reserve(const StepShape& shape);
  // Every device address a captured step bakes in, in a fixed order.
  StepGraphCache<Graph>::Addresses CapturedAddresses() const;
  // Enqueues the whole forward pass for a staged step.
  absl::Status Enqueue(const StepShape& shape);
  absl::Status RunLayer(int layer, const StepShape& shape);
  // Tensor parallelism (no-ops for the unsplit model): sums a row-parallel
  // product's partial results [tokens][width] over the ranks, and makes the
  // logits of the step's rows over the whole vocabulary from this rank's
  // slice.
  absl::Status JoinRanks(float* data, int64_t tokens, int64_t width);
  absl::Status HeadLogits(const StepShape& shape);

  ModelConfig config_;        // this rank's dimensions (ShardConfig)
  ModelConfig model_config_;  // the whole model's
  CudaRunnerOptions options_;
  LayerRange range_;
  bool first_ = true;  // embeds token ids
  bool last_ = true;   // makes logits
  ShardSpec shard_;
  IndexRange vocab_rows_;  // of token_embd_ and output_
  DeviceCollective* collective_ = nullptr;
  uint64_t kv_bytes_ = 0;
  kernels::cuda::Stream stream_;
  std::unique_ptr<kernels::cuda::BlasLt> blas_;
  kernels::RopeParams rope_;

  std::vector<kernels::cuda::DeviceBuffer> weight_buffers_;
  kernels::WeightMatrix token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<DeviceLayer> layers_;
  std::vector<kernels::cuda::DeviceBuffer> kv_k_, kv_v_;
  uint64_t device_weight_bytes_ = 0;
  uint64_t bytes_read_per_token_ = 0;

  // Scratch, grown to the largest step seen. `ints_` holds, in order: token
  // ids, positions, table offsets [tokens each], logit rows [rows], block
  // tables [tables].
  kernels::cuda::DeviceBuffer x_, h_, q_, k_, v_, attn_, gate_, up_, ffn_, logits_, ints_;
  // A shard's LM head: its logits [rows][its vocabulary rows], sent as
  // rows * VocabRowsPerRank floats, and every rank's, gathered.
  kernels::cuda::DeviceBuffer local_logits_, gathered_logits_;
  // Every rank's partial sums of a decode-sized step with more than two
  // ranks, added in rank order by JoinRanks.
  kernels::cuda::DeviceBuffer partials_;
  // Decode steps' split-attention partials (AttentionDecodeBatch).
  kernels::cuda::DeviceBuffer attn_split_;
  // The step's integers go up from one of two pinned buffers in turn; each
  // has an event recorded after its copy, so staging a step waits only for
  // the copy of two steps ago (long done), never for the whole stream: a
  // step costs one host synchronisation, the one that reads its result.
  kernels::cuda::PinnedBuffer staging_[2];
  kernels::cuda::Event staged_[2];
  int next_staging_ = 0;
  // True when some matrix is F16/BF16: MatMul then rounds activations into
  // BlasLt's conversion scratch, which Reserve sizes.
  bool converts_activations_ = false;
  // The widest input any matrix multiply takes (n_embd, q_dim or n_ff).
  int64_t max_matmul_cols_ = 0;
  size_t max_dequantized_bytes_ = 0;  // largest quantised matrix as BF16

  StepGraphCache<Graph> graphs_;
  int64_t graph_replays_ = 0;
  absl::Status graph_status_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_CUDA_MODEL_RUNNER_H_
