// The merge loop of byte-level BPE, over token ids.
//
// A word starts as one symbol per byte (the id of that byte's one-character
// token). Repeatedly, the adjacent pair whose merge has the lowest rank is
// merged, the leftmost pair first among equal ranks, until no adjacent pair
// has a merge. This is llama.cpp's order (a priority queue of candidate
// pairs, stale entries skipped when popped), so results match it exactly.
//
// Working on ids instead of strings is equivalent because every merge's two
// parts are required to be vocabulary tokens (checked when the table is
// built): a symbol whose text is not a token can take part in no merge.
//
// BpeMergeTable is immutable after construction and safe to share between
// threads; ApplyBpeMerges keeps all state on its stack.
#ifndef TESSERA_COMMON_TOKENIZER_BPE_H_
#define TESSERA_COMMON_TOKENIZER_BPE_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace tessera {

struct BpeMerge {
  int32_t rank;    // position in tokenizer.ggml.merges; lower merges first
  int32_t result;  // id of the merged text, or -1 if it is not a token
};

class BpeMergeTable {
 public:
  // Keeps the first (lowest-rank) entry if a pair is listed twice, as
  // llama.cpp does.
  void Add(int32_t left, int32_t right, BpeMerge merge) {
    pairs_.try_emplace(Key(left, right), merge);
  }
  const BpeMerge* Find(int32_t left, int32_t right) const {
    auto it = pairs_.find(Key(left, right));
    return it == pairs_.end() ? nullptr : &it->second;
  }
  size_t size() const { return pairs_.size(); }

 private:
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  absl::flat_hash_map<uint64_t, BpeMerge> pairs_;
};

// One final symbol of a word: a token id (-1 if its text is not a token,
// which happens only for bytes missing from the vocabulary or merges whose
// result is not a token) and the byte range of the word it covers.
struct BpeSymbol {
  int32_t id;
  uint32_t begin;
  uint32_t length;
};

// Merges a word given the token id of each of its bytes (-1 for a byte with
// no token). Returns the symbols left, in order, covering every byte.
std::vector<BpeSymbol> ApplyBpeMerges(const BpeMergeTable& merges,
                                      absl::Span<const int32_t> byte_ids);

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_BPE_H_
