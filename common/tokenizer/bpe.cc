#include "common/tokenizer/bpe.h"

#include <queue>

namespace tessera {
namespace {

struct Symbol {
  int32_t id;
  uint32_t begin;
  uint32_t length;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Candidate {
  int32_t rank;
  int32_t left;  // symbol indices
  int32_t right;
  int32_t left_id;  // ids when queued: a candidate is stale if either changed
  int32_t right_id;
  int32_t result;
};

// Lowest rank first, then leftmost.
struct LaterThan {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

std::vector<BpeSymbol> ApplyBpeMerges(const BpeMergeTable& merges,
                                      absl::Span<const int32_t> byte_ids) {
  const int32_t n = static_cast<int32_t>(byte_ids.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids[i], static_cast<uint32_t>(i), 1, i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LaterThan> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t a = symbols[left].id;
    const int32_t b = symbols[right].id;
    if (a < 0 || b < 0) return;
    if (const BpeMerge* m = merges.Find(a, b)) {
      queue.push({m->rank, left, right, a, b, m->result});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    // Symbols only ever grow, so unchanged ids and adjacency mean the pair
    // is exactly the one that was queued.
    if (left.length == 0 || right.length == 0 || left.next != c.right ||
        left.id != c.left_id || right.id != c.right_id) {
      continue;
    }
    left.id = c.result;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }

  std::vector<BpeSymbol> out;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
    out.push_back({symbols[i].id, symbols[i].begin, symbols[i].length});
  }
  return out;
}

}  // namespace tessera
