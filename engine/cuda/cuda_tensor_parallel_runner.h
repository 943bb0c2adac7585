// A tensor-parallel group over the GPUs of one process: `tessera-worker
// --device cuda:0,1,...` (or `--device cuda --tp N`). Rank r holds shard r
// of the layer range (engine/tensor_parallel.h: KV-head groups, column- and
// row-parallel matrices, a vocabulary slice of the embedding and LM head)
// on GPU devices[r] and runs it as a CudaModelRunner with its endpoint of
// the group's collective; together the ranks act as one StepRunner: the
// same steps in, the same StepOutput out (hidden states, or logits over the
// whole vocabulary, identical on every rank; rank 0's are returned).
//
// Collectives: NCCL (the default; needs a build with NCCL and distinct
// devices), or the host-staged group (host_staged_collective.h), which runs
// any number of ranks on any devices, one GPU included, with the CPU group's
// rank-order sums, for tests on a machine with one GPU.
//
// Rank 0 runs on the caller's thread, ranks 1..N-1 on threads the runner
// owns (RankThreads); each rank's work is enqueued on its own GPU's stream,
// and each rank waits for it with DeviceCollective::Wait, which gives up when
// a peer fails. Only rank 0 copies the result to the host.
//
// Failure: a step that does not fit (ValidateStep) is refused before any
// rank starts, and the runner stays usable. A rank that fails after that
// (a CUDA or NCCL error) aborts the group, so its peers stop waiting for it;
// once every rank is back, the runner destroys the ranks' CUDA graphs and
// releases the group (ncclCommAbort ends kernels still waiting on a peer),
// and then refuses every later step with FAILED_PRECONDITION naming the
// first error: a worker whose GPUs failed must be restarted.
//
// Thread-safety: one Forward at a time (like every StepRunner).
#ifndef TESSERA_ENGINE_CUDA_CUDA_TENSOR_PARALLEL_RUNNER_H_
#define TESSERA_ENGINE_CUDA_CUDA_TENSOR_PARALLEL_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/device_collective.h"
#include "engine/rank_threads.h"
#include "engine/step_runner.h"
#include "kernels/kernels.h"

namespace tessera {

enum class GpuCollective {
  kNccl,        // NcclGroup: one rank per GPU
  kHostStaged,  // HostStagedGroup: any placement, host synchronisation per call
};

struct CudaTensorParallelOptions {
  // CUDA ordinals, one per rank; their count is the TP degree and must pass
  // CheckTensorParallel. NCCL needs them distinct.
  std::vector<int> devices;
  GpuCollective collective = GpuCollective::kNccl;
  // Per rank, as CudaRunnerOptions (each rank's pool holds its KV heads).
  int64_t kv_blocks = 256;
  int block_size = 16;
  kernels::DType kv_dtype = kernels::DType::kF32;
  int64_t graph_max_tokens = 64;
};

class CudaTensorParallelRunner final : public StepRunner {
 public:
  // Loads and uploads every rank's shard of `range` from `file` (needed only
  // during Create). INVALID_ARGUMENT naming the numbers when the degree does
  // not fit the model, or a device is listed twice for NCCL; UNIMPLEMENTED
  // for NCCL in a build without it; the CUDA runner's refusals.
  static absl::StatusOr<std::unique_ptr<CudaTensorParallelRunner>> Create(
      const GgufFile& file, const ModelConfig& config, LayerRange range,
      const CudaTensorParallelOptions& options);
  ~CudaTensorParallelRunner() override = default;
  CudaTensorParallelRunner(const CudaTensorParallelRunner&) = delete;
  CudaTensorParallelRunner& operator=(const CudaTensorParallelRunner&) = delete;

  absl::Status Forward(absl::Span<const SequenceStep> seqs, absl::Span<const float> hidden_in,
                       StepOutput* out) override;
  const ModelConfig& model_config() const override { return ranks_[0]->model_config(); }
  LayerRange range() const override { return ranks_[0]->range(); }
  int64_t kv_blocks() const override { return ranks_[0]->kv_blocks(); }
  uint64_t weight_bytes() const override;
  uint64_t kv_bytes() const override;
  // "cuda:0,1 (tp 2, nccl 2.28.9)".
  std::string device() const override;

  int tp() const { return static_cast<int>(ranks_.size()); }
  const CudaModelRunner& rank(int r) const { return *ranks_[r]; }

 private:
  explicit CudaTensorParallelRunner(int tp) : threads_(tp) {}

  CudaTensorParallelOptions options_;
  std::string collective_name_;
  // Declared before the ranks: the group outlives the runners that use it
  // (their destructors drain their streams first).
  std::unique_ptr<DeviceCollectiveGroup> group_;
  std::vector<std::unique_ptr<CudaModelRunner>> ranks_;
  std::vector<StepOutput> outs_;
  std::vector<absl::Status> statuses_;
  absl::Status failed_;  // the first rank error; the runner is unusable after it
  // Last: its threads are joined before anything they use goes.
  RankThreads threads_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_CUDA_TENSOR_PARALLEL_RUNNER_H_
