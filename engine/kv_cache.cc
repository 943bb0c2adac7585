#include "engine/kv_cache.h"

#include "absl/strings/str_format.h"
#include "engine/step_validation.h"

namespace tessera {

namespace {

size_t ElementBytes(kernels::DType dtype) { return dtype == kernels::DType::kF16 ? 2 : 4; }

}  // namespace

uint64_t KvCache::BytesPerBlock(const ModelConfig& config, int layers, int block_size,
                                kernels::DType dtype) {
  return 2ull * layers * block_size * config.n_kv_head * config.head_dim * ElementBytes(dtype);
}

KvCache::KvCache(const ModelConfig& config, LayerRange layers, int64_t num_blocks,
                 int block_size, kernels::DType dtype)
    : layers_(layers),
      num_blocks_(num_blocks),
      block_size_(block_size),
      n_kv_head_(config.n_kv_head),
      head_dim_(config.head_dim),
      dtype_(dtype) {
  const size_t values =
      static_cast<size_t>(num_blocks) * block_size * config.n_kv_head * config.head_dim;
  const size_t floats = (values * ElementBytes(dtype) + sizeof(float) - 1) / sizeof(float);
  k_.resize(layers.size());
  v_.resize(layers.size());
  for (int i = 0; i < layers.size(); ++i) {
    k_[i].assign(floats, 0.0f);
    v_[i].assign(floats, 0.0f);
  }
}

kernels::KvLayer KvCache::layer(int layer) {
  const int i = layer - layers_.begin;
  kernels::KvLayer kv;
  kv.k = k_[i].data();
  kv.v = v_[i].data();
  kv.dtype = dtype_;
  kv.num_blocks = num_blocks_;
  kv.block_size = block_size_;
  kv.n_kv_head = n_kv_head_;
  kv.head_dim = head_dim_;
  return kv;
}

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (const auto& k : k_) total += k.size() * sizeof(float);
  for (const auto& v : v_) total += v.size() * sizeof(float);
  return total;
}

absl::Status KvCache::ValidateBlockTable(absl::Span<const int32_t> block_table,
                                         int64_t end_position) const {
  return tessera::ValidateBlockTable(block_table, end_position, num_blocks_, block_size_);
}

BlockAllocator::BlockAllocator(int64_t num_blocks) {
  free_.reserve(num_blocks);
  // Hand out low ids first: pop from the back of a descending list.
  for (int64_t i = num_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
}

absl::StatusOr<std::vector<int32_t>> BlockAllocator::Allocate(int64_t n) {
  if (n > free_blocks()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("need %d KV blocks but only %d are free", n, free_blocks()));
  }
  std::vector<int32_t> out(free_.end() - n, free_.end());
  free_.resize(free_.size() - n);
  return out;
}

void BlockAllocator::Free(absl::Span<const int32_t> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) free_.push_back(*it);
}

}  // namespace tessera
