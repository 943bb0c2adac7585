#include "engine/cuda/cuda_tensor_parallel_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "engine/cuda/host_staged_collective.h"
#include "engine/cuda/nccl_collective.h"
#include "engine/model_weights.h"
#include "engine/tensor_parallel.h"

namespace tessera {

absl::StatusOr<std::unique_ptr<CudaTensorParallelRunner>> CudaTensorParallelRunner::Create(
    const GgufFile& file, const ModelConfig& config, LayerRange range,
    const CudaTensorParallelOptions& options) {
  const int tp = static_cast<int>(options.devices.size());
  if (absl::Status s = CheckTensorParallel(config, tp); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", s.message()));
  }
  std::unique_ptr<CudaTensorParallelRunner> r(new CudaTensorParallelRunner(tp));
  r->options_ = options;
  // The group first: a refused device list fails before gigabytes move.
  if (options.collective == GpuCollective::kNccl) {
    ASSIGN_OR_RETURN(r->group_, CreateNcclGroup(options.devices));
    r->collective_name_ = absl::StrCat("nccl ", NcclVersion());
  } else {
    r->group_ = std::make_unique<HostStagedGroup>(tp);
    r->collective_name_ = "host-staged";
  }
  CudaRunnerOptions co;
  co.kv_blocks = options.kv_blocks;
  co.block_size = options.block_size;
  co.kv_dtype = options.kv_dtype;
  co.graph_max_tokens = options.graph_max_tokens;
  for (int k = 0; k < tp; ++k) {
    // One shard's host copy at a time: it lives only while it uploads.
    ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> shard,
                     ModelWeights::LoadShard(file, config, range, ShardSpec{k, tp}));
    co.device = options.devices[k];
    ASSIGN_OR_RETURN(std::unique_ptr<CudaModelRunner> rank,
                     CudaModelRunner::Create(*shard, co, r->group_->rank(k)));
    r->ranks_.push_back(std::move(rank));
  }
  r->outs_.resize(tp);
  r->statuses_.resize(tp);
  return r;
}

absl::Status CudaTensorParallelRunner::Forward(absl::Span<const SequenceStep> seqs,
                                               absl::Span<const float> hidden_in,
                                               StepOutput* out) {
  if (!failed_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the CUDA tensor-parallel group on ", device(),
        " failed earlier and cannot run again (restart the worker): ", failed_.message()));
  }
  // Every rank would refuse a bad step the same way before enqueuing
  // anything; refusing it here keeps the group usable.
  RETURN_IF_ERROR(ranks_[0]->Validate(seqs, hidden_in));
  int64_t tokens = 0;
  for (const SequenceStep& s : seqs) tokens += s.num_tokens;
  threads_.Run([&](int k) {
    CudaModelRunner& rank = *ranks_[k];
    DeviceCollective* collective = group_->rank(k);
    absl::Status& status = statuses_[k];
    int64_t rows = 0;
    status = rank.ForwardDevice(seqs, hidden_in, &rows).status();
    // The step's collectives wait on the other GPUs: a wait that gives up
    // when a peer fails, never cudaStreamSynchronize.
    if (status.ok()) status = collective->Wait(rank.stream());
    // The ranks end with the same result; rank 0's is returned.
    if (status.ok() && k == 0) status = rank.ReadOutput(tokens, rows, &outs_[0]);
    if (!status.ok()) collective->Abort();
  });
  absl::Status first_error;
  for (int k = 0; k < tp(); ++k) {
    const absl::Status& s = statuses_[k];
    if (s.ok()) continue;
    if (first_error.ok() || (absl::IsCancelled(first_error) && !absl::IsCancelled(s))) {
      first_error = absl::Status(s.code(), absl::StrFormat("rank %d: %s", k, s.message()));
    }
  }
  if (!first_error.ok()) {
    failed_ = first_error;
    // No rank is inside a call now. NCCL's abort waits for the CUDA graphs
    // that hold the group's operations, so they go first; then the abort
    // ends any kernel still waiting for a peer.
    for (auto& rank : ranks_) rank->DropGraphs();
    group_->Release();
    return first_error;
  }
  *out = std::move(outs_[0]);
  return absl::OkStatus();
}

uint64_t CudaTensorParallelRunner::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& r : ranks_) total += r->weight_bytes();
  return total;
}

uint64_t CudaTensorParallelRunner::kv_bytes() const {
  uint64_t total = 0;
  for (const auto& r : ranks_) total += r->kv_bytes();
  return total;
}

std::string CudaTensorParallelRunner::device() const {
  return absl::StrFormat("cuda:%s (tp %d, %s)", absl::StrJoin(options_.devices, ","), tp(),
                         collective_name_);
}

}  // namespace tessera
