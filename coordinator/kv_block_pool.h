// The coordinator's record of which KV blocks are free. Workers only hold the
// pools; every stage has the same number of blocks, so one block id names
// the same slot on every stage and one block table serves the whole
// pipeline.
//
// Thread-safety: not synchronised; owned by the scheduler thread.
#ifndef TESSERA_COORDINATOR_KV_BLOCK_POOL_H_
#define TESSERA_COORDINATOR_KV_BLOCK_POOL_H_

#include <cstdint>
#include <vector>

namespace tessera {

class KvBlockPool {
 public:
  explicit KvBlockPool(int64_t num_blocks = 0) { Reset(num_blocks); }

  void Reset(int64_t num_blocks) {
    free_.clear();
    total_ = num_blocks;
    // Lowest ids first out, so that small runs use a compact prefix.
    for (int64_t i = num_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
  }
  int64_t total() const { return total_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }

  // Appends `n` blocks to `table`; false (and no change) if fewer are free.
  bool Allocate(int64_t n, std::vector<int32_t>* table) {
    if (n > free_blocks()) return false;
    for (int64_t i = 0; i < n; ++i) {
      table->push_back(free_.back());
      free_.pop_back();
    }
    return true;
  }
  void Free(const std::vector<int32_t>& blocks) {
    free_.insert(free_.end(), blocks.rbegin(), blocks.rend());
  }

 private:
  int64_t total_ = 0;
  std::vector<int32_t> free_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_KV_BLOCK_POOL_H_
