// The paged KV cache of one process: for each layer it holds, a fixed pool of
// blocks of `block_size` positions, each holding the K and V vectors of every
// KV head. Who owns which block is decided elsewhere (a BlockAllocator here
// for single-process runs, the coordinator in a cluster); the cache only
// stores. Every stage of a pipeline has the same number of blocks, so one
// block table is valid on all of them.
//
// Thread-safety: the pool itself is not synchronised; one step runs at a time.
#ifndef TESSERA_ENGINE_KV_CACHE_H_
#define TESSERA_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model_config.h"
#include "engine/model_weights.h"
#include "kernels/kernels.h"

namespace tessera {

class KvCache {
 public:
  static constexpr int kDefaultBlockSize = 16;

  // Bytes one block takes across `layers` layers (K and V in `dtype`).
  static uint64_t BytesPerBlock(const ModelConfig& config, int layers, int block_size,
                                kernels::DType dtype = kernels::DType::kF32);

  // `dtype` is kF32 or kF16 (half the memory; see kernels::KvLayer).
  KvCache(const ModelConfig& config, LayerRange layers, int64_t num_blocks,
          int block_size = kDefaultBlockSize, kernels::DType dtype = kernels::DType::kF32);

  int64_t num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  kernels::DType dtype() const { return dtype_; }
  // Bytes the pool holds (K and V of every layer of the range).
  uint64_t bytes() const;
  // `layer` is a global layer index inside the range given at construction.
  kernels::KvLayer layer(int layer);

  // Checks that `block_table` can hold positions [0, end_position) and that
  // every id is in range: INVALID_ARGUMENT naming the offending entry.
  absl::Status ValidateBlockTable(absl::Span<const int32_t> block_table,
                                  int64_t end_position) const;

 private:
  LayerRange layers_;
  int64_t num_blocks_;
  int block_size_;
  int n_kv_head_;
  int head_dim_;
  kernels::DType dtype_;
  // Per layer; floats for kF32, halves packed two to a float slot for kF16.
  std::vector<std::vector<float>> k_;
  std::vector<std::vector<float>> v_;
};

// Hands out block ids from a fixed pool; freed blocks are reused at once.
// Not thread-safe.
class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t num_blocks);
  // RESOURCE_EXHAUSTED if fewer than `n` blocks are free.
  absl::StatusOr<std::vector<int32_t>> Allocate(int64_t n);
  void Free(absl::Span<const int32_t> blocks);
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }

 private:
  std::vector<int32_t> free_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_KV_CACHE_H_
