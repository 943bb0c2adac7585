#include "engine/tensor_parallel_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace tessera {

absl::StatusOr<std::unique_ptr<TensorParallelRunner>> TensorParallelRunner::Create(
    const GgufFile& file, const ModelConfig& config, LayerRange range,
    const TensorParallelOptions& options) {
  if (absl::Status s = CheckTensorParallel(config, options.tp); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", s.message()));
  }
  std::unique_ptr<TensorParallelRunner> tp(new TensorParallelRunner(options.tp));
  for (int r = 0; r < options.tp; ++r) {
    auto rank = std::make_unique<Rank>();
    ASSIGN_OR_RETURN(rank->weights,
                     ModelWeights::LoadShard(file, config, range, ShardSpec{r, options.tp}));
    rank->kv = std::make_unique<KvCache>(rank->weights->config(), range, options.kv_blocks,
                                         options.kv_block_size, options.kv_dtype);
    rank->pool = std::make_unique<kernels::ThreadPool>(std::max(1, options.threads_per_rank));
    rank->runner = std::make_unique<ModelRunner>(rank->weights.get(), rank->kv.get(),
                                                 rank->pool.get(), tp->group_.rank(r));
    tp->ranks_.push_back(std::move(rank));
  }
  return tp;
}

absl::Status TensorParallelRunner::Forward(absl::Span<const SequenceStep> seqs,
                                           absl::Span<const float> hidden_in, StepOutput* out) {
  threads_.Run([&](int r) {
    Rank& rank = *ranks_[r];
    rank.status = rank.runner->Forward(seqs, hidden_in, &rank.out);
    if (!rank.status.ok()) {
      group_.Abort(absl::StrCat("rank ", r, " failed: ", rank.status.message()));
    }
  });
  // Every rank is outside the collectives now, so an abort can be cleared.
  absl::Status first_error;
  for (const auto& rank : ranks_) {
    if (rank->status.ok()) continue;
    if (first_error.ok() || (absl::IsCancelled(first_error) && !absl::IsCancelled(rank->status))) {
      first_error = rank->status;
    }
  }
  if (!first_error.ok()) {
    group_.Reset();
    return first_error;
  }
  *out = std::move(ranks_[0]->out);
  return absl::OkStatus();
}

uint64_t TensorParallelRunner::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& r : ranks_) total += r->weights->weight_bytes();
  return total;
}

uint64_t TensorParallelRunner::kv_bytes() const {
  uint64_t total = 0;
  for (const auto& r : ranks_) total += r->kv->bytes();
  return total;
}

std::string TensorParallelRunner::device() const {
  return absl::StrFormat("cpu, tp %d", tp());
}

}  // namespace tessera
