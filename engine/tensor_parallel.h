// How a tensor-parallel group of N ranks splits a Llama model's layers.
//
// Attention is split by KV-head groups: rank r holds KV heads
// [r*K/N, (r+1)*K/N) and the query heads that read them, so attention needs no
// communication. Q, K, V (and gate, up) are column-parallel: each rank holds a
// contiguous block of their rows (output features). The attention output and
// down projections are row-parallel: each rank holds the matching block of
// their columns (input features) and produces a partial sum that an
// all-reduce joins. Norms and the residual stream are replicated. The token
// embedding and LM head are split by vocabulary rows (VocabShard); logits are
// gathered before sampling, so they equal the single-rank ones for the same
// final hidden state.
//
// A column block of a block-quantised matrix must start and end on a
// quantisation block, so the per-rank widths of the attention output (its
// columns are query-head dims) and down projection (n_ff) must be multiples of
// the block size; CheckTensorParallel refuses a degree that breaks this.
//
// Thread-safety: plain values and pure functions.
#ifndef TESSERA_ENGINE_TENSOR_PARALLEL_H_
#define TESSERA_ENGINE_TENSOR_PARALLEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/kernels.h"

namespace tessera {

// One rank of a tensor-parallel group; {0, 1} is the unsplit model.
struct ShardSpec {
  int rank = 0;
  int size = 1;
};

// [begin, end) of some index space.
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// INVALID_ARGUMENT naming the numbers when `tp` does not divide the KV heads
// or n_ff, leaves a rank without vocabulary rows, or is below 1. Block
// alignment is checked per tensor at load time (ShardColumns), since it
// depends on each matrix's storage type.
absl::Status CheckTensorParallel(const ModelConfig& config, int tp);

// The config a rank computes with: n_head, n_kv_head and n_ff divided by the
// degree; everything else (n_embd, head_dim, vocab_size) unchanged.
ModelConfig ShardConfig(const ModelConfig& config, const ShardSpec& shard);

// Rows of the embedding / LM head a rank holds: ceil(vocab / N) each, the
// last rank taking the remainder.
int64_t VocabRowsPerRank(int64_t vocab, int tp);
IndexRange VocabShard(int64_t vocab, const ShardSpec& shard);

// Per-rank row blocks (output features) of the column-parallel matrices and
// the matching column blocks of the row-parallel ones.
IndexRange QueryDims(const ModelConfig& config, const ShardSpec& shard);  // Q rows, O cols
IndexRange KvDims(const ModelConfig& config, const ShardSpec& shard);     // K/V rows
IndexRange FfnDims(const ModelConfig& config, const ShardSpec& shard);    // gate/up rows, down cols

// A zero-copy view of rows [rows.begin, rows.end) of `m`.
kernels::WeightMatrix SliceRows(const kernels::WeightMatrix& m, IndexRange rows);

// Copies columns [cols.begin, cols.end) of `m` into `storage` (resized) and
// returns a contiguous matrix over it. INVALID_ARGUMENT naming `name` and the
// numbers when the block does not start and end on a quantisation block.
absl::StatusOr<kernels::WeightMatrix> ShardColumns(const kernels::WeightMatrix& m,
                                                   IndexRange cols, const std::string& name,
                                                   std::vector<uint8_t>* storage);

}  // namespace tessera

#endif  // TESSERA_ENGINE_TENSOR_PARALLEL_H_
