#include "coordinator/kv_block_pool.h"

#include <algorithm>

namespace tessera {
namespace {

constexpr uint64_t kRootKey = 0x9E3779B97F4A7C15ull;

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void KvBlockPool::Reset(int64_t num_blocks, int block_size) {
  total_ = num_blocks;
  block_size_ = block_size;
  free_.clear();
  evictable_.clear();
  entries_.clear();
  by_key_.clear();
  hit_blocks_ = 0;
  // Lowest ids first out, so that small runs use a compact prefix.
  for (int64_t i = num_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
}

uint64_t KvBlockPool::KeyOf(uint64_t parent, const int32_t* tokens) const {
  uint64_t h = Mix(parent);
  for (int i = 0; i < block_size_; ++i) h = Mix(h ^ static_cast<uint32_t>(tokens[i]));
  return h;
}

bool KvBlockPool::Allocate(int64_t n, std::vector<int32_t>* table) {
  if (n > free_blocks()) return false;
  for (int64_t i = 0; i < n; ++i) {
    if (free_.empty()) {
      // Evict the least recently released cached block.
      const int32_t id = evictable_.front();
      evictable_.pop_front();
      auto it = entries_.find(id);
      by_key_.erase(it->second.key);
      entries_.erase(it);
      free_.push_back(id);
    }
    table->push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockPool::Release(const std::vector<int32_t>& blocks) {
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) {
    auto it = entries_.find(*b);
    if (it == entries_.end()) {
      free_.push_back(*b);
      continue;
    }
    if (--it->second.users == 0) {
      it->second.lru = evictable_.insert(evictable_.end(), *b);
    }
  }
}

int64_t KvBlockPool::Match(const std::vector<int32_t>& tokens, int64_t max_blocks,
                           std::vector<int32_t>* table) {
  const int64_t limit =
      std::min<int64_t>(max_blocks, static_cast<int64_t>(tokens.size()) / block_size_);
  uint64_t parent = kRootKey;
  int64_t matched = 0;
  for (; matched < limit; ++matched) {
    const int32_t* block = tokens.data() + matched * block_size_;
    const uint64_t key = KeyOf(parent, block);
    auto k = by_key_.find(key);
    if (k == by_key_.end()) break;
    Entry& e = entries_.at(k->second);
    if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), block)) break;
    if (e.users++ == 0) evictable_.erase(e.lru);
    table->push_back(k->second);
    parent = key;
  }
  hit_blocks_ += matched;
  return matched;
}

void KvBlockPool::Register(const std::vector<int32_t>& tokens, const std::vector<int32_t>& table,
                           int64_t from, int64_t to) {
  // Recompute the chain up to `from` (cheap: a hash per block).
  uint64_t parent = kRootKey;
  for (int64_t i = 0; i < to; ++i) {
    const int32_t* block = tokens.data() + i * block_size_;
    const uint64_t key = KeyOf(parent, block);
    if (i >= from && !by_key_.contains(key) && !entries_.contains(table[i])) {
      Entry e;
      e.key = key;
      e.parent = parent;
      e.tokens.assign(block, block + block_size_);
      e.users = 1;  // the sequence that computed it
      entries_[table[i]] = std::move(e);
      by_key_[key] = table[i];
    }
    parent = key;
  }
}

}  // namespace tessera
