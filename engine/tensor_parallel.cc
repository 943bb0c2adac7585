#include "engine/tensor_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace tessera {

absl::Status CheckTensorParallel(const ModelConfig& c, int tp) {
  if (tp < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor-parallel degree %d must be at least 1", tp));
  }
  if (c.n_kv_head % tp != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor-parallel degree %d does not divide the model's %d KV heads (%d query heads); "
        "attention is split by KV-head groups, so tp must divide %d",
        tp, c.n_kv_head, c.n_head, c.n_kv_head));
  }
  if (c.n_ff % tp != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor-parallel degree %d does not divide the feed-forward size n_ff %d", tp, c.n_ff));
  }
  if (VocabRowsPerRank(c.vocab_size, tp) * (tp - 1) >= c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor-parallel degree %d leaves a rank without rows of the %d-token vocabulary", tp,
        c.vocab_size));
  }
  return absl::OkStatus();
}

ModelConfig ShardConfig(const ModelConfig& config, const ShardSpec& shard) {
  ModelConfig c = config;
  c.n_head = config.n_head / shard.size;
  c.n_kv_head = config.n_kv_head / shard.size;
  c.n_ff = config.n_ff / shard.size;
  return c;
}

int64_t VocabRowsPerRank(int64_t vocab, int tp) { return (vocab + tp - 1) / tp; }

IndexRange VocabShard(int64_t vocab, const ShardSpec& shard) {
  const int64_t per = VocabRowsPerRank(vocab, shard.size);
  const int64_t begin = std::min(vocab, per * shard.rank);
  return {begin, std::min(vocab, begin + per)};
}

IndexRange QueryDims(const ModelConfig& c, const ShardSpec& shard) {
  const int64_t per = static_cast<int64_t>(c.n_head / shard.size) * c.head_dim;
  return {per * shard.rank, per * (shard.rank + 1)};
}

IndexRange KvDims(const ModelConfig& c, const ShardSpec& shard) {
  const int64_t per = static_cast<int64_t>(c.n_kv_head / shard.size) * c.head_dim;
  return {per * shard.rank, per * (shard.rank + 1)};
}

IndexRange FfnDims(const ModelConfig& c, const ShardSpec& shard) {
  const int64_t per = c.n_ff / shard.size;
  return {per * shard.rank, per * (shard.rank + 1)};
}

kernels::WeightMatrix SliceRows(const kernels::WeightMatrix& m, IndexRange rows) {
  kernels::WeightMatrix s = m;
  s.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(rows.begin) * m.row_bytes;
  s.rows = rows.size();
  return s;
}

absl::StatusOr<kernels::WeightMatrix> ShardColumns(const kernels::WeightMatrix& m,
                                                   IndexRange cols, const std::string& name,
                                                   std::vector<uint8_t>* storage) {
  const int block = kernels::BlockSize(m.dtype);
  if (cols.begin % block != 0 || cols.size() % block != 0 || cols.begin < 0 ||
      cols.end > m.cols) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': a rank's column block [%d,%d) of %d columns is not aligned to the "
        "quantisation block of %d values of %s; choose a tensor-parallel degree whose "
        "per-rank width is a multiple of %d",
        name, cols.begin, cols.end, m.cols, block, kernels::DTypeName(m.dtype), block));
  }
  const size_t offset = kernels::RowBytes(m.dtype, cols.begin);
  const size_t row_bytes = kernels::RowBytes(m.dtype, cols.size());
  storage->resize(row_bytes * static_cast<size_t>(m.rows));
  const auto* src = static_cast<const uint8_t*>(m.data);
  for (int64_t r = 0; r < m.rows; ++r) {
    std::memcpy(storage->data() + r * row_bytes, src + r * m.row_bytes + offset, row_bytes);
  }
  kernels::WeightMatrix s = m;
  s.data = storage->data();
  s.cols = cols.size();
  s.row_bytes = row_bytes;
  return s;
}

}  // namespace tessera
