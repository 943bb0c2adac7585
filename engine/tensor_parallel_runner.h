// A tensor-parallel group inside one process: N ranks, each a thread with its
// own shard of the weights (ModelWeights::LoadShard), its own KV cache (its KV
// heads only), its own kernel thread pool and its own endpoint of a
// CpuCollectiveGroup. Together they act like one ModelRunner for a layer
// range: Forward takes the same steps and returns the same StepOutput (hidden
// states, or logits over the full vocabulary, identical on every rank).
//
// Rank 0 runs on the caller's thread; ranks 1..N-1 on threads the runner owns
// for its lifetime (RankThreads). Every rank's KV cache has the same number of
// blocks, so a block table is valid on all of them.
//
// Failure: if one rank's Forward fails it aborts the collective group, so its
// peers return CANCELLED instead of waiting; the runner then resets the group
// and returns the first error that is not CANCELLED.
//
// Thread-safety: one Forward at a time (like ModelRunner).
#ifndef TESSERA_ENGINE_TENSOR_PARALLEL_RUNNER_H_
#define TESSERA_ENGINE_TENSOR_PARALLEL_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/cpu_collective.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "engine/rank_threads.h"
#include "engine/step_runner.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"

namespace tessera {

struct TensorParallelOptions {
  // Ranks in the group (the TP degree); must pass CheckTensorParallel.
  int tp = 1;
  // KV blocks per rank (each holds only that rank's KV heads).
  int64_t kv_blocks = 256;
  int kv_block_size = KvCache::kDefaultBlockSize;
  kernels::DType kv_dtype = kernels::DType::kF32;
  // Kernel threads per rank, including the rank's own thread.
  int threads_per_rank = 1;
};

class TensorParallelRunner final : public StepRunner {
 public:
  // Loads every rank's shard of `range` from `file` (which must outlive the
  // runner) and starts the rank threads. INVALID_ARGUMENT (naming the
  // numbers) when the degree does not fit the model.
  static absl::StatusOr<std::unique_ptr<TensorParallelRunner>> Create(
      const GgufFile& file, const ModelConfig& config, LayerRange range,
      const TensorParallelOptions& options);
  ~TensorParallelRunner() override = default;
  TensorParallelRunner(const TensorParallelRunner&) = delete;
  TensorParallelRunner& operator=(const TensorParallelRunner&) = delete;

  // As ModelRunner::Forward, run by all ranks together.
  absl::Status Forward(absl::Span<const SequenceStep> seqs, absl::Span<const float> hidden_in,
                       StepOutput* out) override;

  int tp() const { return static_cast<int>(ranks_.size()); }
  // The shard rank r holds; 0 <= r < tp().
  const ModelWeights& shard(int r) const { return *ranks_[r]->weights; }
  const ModelConfig& model_config() const override {
    return ranks_[0]->weights->model_config();
  }
  LayerRange range() const override { return ranks_[0]->weights->range(); }
  int64_t kv_blocks() const override { return ranks_[0]->kv->num_blocks(); }
  uint64_t weight_bytes() const override;
  uint64_t kv_bytes() const override;
  std::string device() const override;

 private:
  struct Rank {
    std::unique_ptr<ModelWeights> weights;
    std::unique_ptr<KvCache> kv;
    std::unique_ptr<kernels::ThreadPool> pool;
    std::unique_ptr<ModelRunner> runner;
    StepOutput out;
    absl::Status status;
  };
  explicit TensorParallelRunner(int tp) : group_(tp), threads_(tp) {}

  CpuCollectiveGroup group_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  // Last: destroyed (its threads joined) before the ranks they run.
  RankThreads threads_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_TENSOR_PARALLEL_RUNNER_H_
