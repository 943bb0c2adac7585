// The coordinator's record of the KV blocks, with a prefix cache. Workers
// only hold the pools; every stage has the same number of blocks, so one
// block id names the same slot on every stage and one block table serves the
// whole pipeline.
//
// Prefix cache: a full block (block_size positions) whose KV a sequence has
// computed is registered under a key chaining the keys of the blocks before
// it with its own tokens, so a key names a whole token prefix. A new
// sequence whose prompt starts with registered blocks reuses them and
// computes only the rest. Shared blocks are full and never written again
// (a sequence writes only positions past what it reused), and the kernels are
// batch-invariant, so reusing a block changes no bit of the output. A
// registered block nobody uses stays cached until its slot is needed; then
// the least recently released one is evicted.
//
// Thread-safety: not synchronised; owned by the scheduler (under its lock).
#ifndef TESSERA_COORDINATOR_KV_BLOCK_POOL_H_
#define TESSERA_COORDINATOR_KV_BLOCK_POOL_H_

#include <cstdint>
#include <list>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tessera {

class KvBlockPool {
 public:
  explicit KvBlockPool(int64_t num_blocks = 0, int block_size = 16) {
    Reset(num_blocks, block_size);
  }

  void Reset(int64_t num_blocks, int block_size);
  int64_t total() const { return total_; }
  // Blocks a sequence could get now: never used, or cached and unused.
  int64_t free_blocks() const {
    return static_cast<int64_t>(free_.size() + evictable_.size());
  }
  int64_t cached_blocks() const { return static_cast<int64_t>(entries_.size()); }
  // Blocks handed out from the cache instead of being computed, since Reset.
  int64_t hit_blocks() const { return hit_blocks_; }

  // Appends `n` blocks to `table` (evicting unused cached blocks if needed);
  // false (and no change) if fewer are available.
  bool Allocate(int64_t n, std::vector<int32_t>* table);
  // Gives back a sequence's blocks: cached ones lose a user, others are free.
  void Release(const std::vector<int32_t>& blocks);

  // Appends to the (empty) `table` the cached blocks holding the longest
  // registered prefix of `tokens`, at most `max_blocks` of them, and returns
  // how many. Each gains a user.
  int64_t Match(const std::vector<int32_t>& tokens, int64_t max_blocks,
                std::vector<int32_t>* table);
  // Registers blocks [from, to) of `table`, whose KV for `tokens` is now
  // computed (to * block_size <= tokens.size()). A block whose prefix is
  // already cached under another id stays private.
  void Register(const std::vector<int32_t>& tokens, const std::vector<int32_t>& table,
                int64_t from, int64_t to);

 private:
  struct Entry {
    uint64_t key = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;  // the block's own tokens, to rule out collisions
    int64_t users = 0;
    std::list<int32_t>::iterator lru;  // valid while users == 0
  };
  uint64_t KeyOf(uint64_t parent, const int32_t* tokens) const;

  int64_t total_ = 0;
  int block_size_ = 16;
  std::vector<int32_t> free_;
  std::list<int32_t> evictable_;  // cached, unused; least recently released first
  absl::flat_hash_map<int32_t, Entry> entries_;  // block id -> entry
  absl::flat_hash_map<uint64_t, int32_t> by_key_;
  int64_t hit_blocks_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_KV_BLOCK_POOL_H_
