#include "common/tokenizer/spm_scores.h"

#include <algorithm>
#include <queue>

namespace tessera {
namespace {

// llama.cpp's character length: from the lead byte's high nibble only.
size_t LeadByteLength(uint8_t lead) {
  if (lead < 0xC0) return 1;  // ASCII, or a stray continuation byte
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// A run of the text; merged-away symbols have length 0.
struct Symbol {
  size_t begin;
  size_t length;
  int prev;
  int next;
};

struct Candidate {
  float score;
  int left;      // symbol index; the right one is symbols[left].next
  size_t length; // combined length when queued, to spot stale entries
};

// Highest score first, then the leftmost pair.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

void EncodeSpmByScore(std::string_view text,
                      const std::function<int32_t(std::string_view)>& lookup,
                      const std::vector<float>& scores,
                      const std::array<int32_t, 256>& byte_ids, int32_t unk_id,
                      std::vector<int32_t>* out) {
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = std::min(LeadByteLength(static_cast<uint8_t>(text[pos])), text.size() - pos);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({pos, n, index - 1, pos + n < text.size() ? index + 1 : -1});
    pos += n;
  }
  if (symbols.empty()) return;

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto consider = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[l.next];
    const size_t length = l.length + r.length;
    const int32_t id = lookup(text.substr(l.begin, length));
    if (id < 0) return;
    const float score = static_cast<size_t>(id) < scores.size() ? scores[id] : 0.0f;
    queue.push({score, left, length});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    // Stale if either side has changed since it was queued: symbols only
    // grow by absorbing their right neighbour, so the combined length no
    // longer matches (or the left one is gone).
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (left.length + right.length != c.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }

  for (int i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].begin, symbols[i].length);
    const int32_t id = lookup(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (char c : piece) {
      const int32_t byte_id = byte_ids[static_cast<uint8_t>(c)];
      if (byte_id >= 0) {
        out->push_back(byte_id);
      } else if (unk_id >= 0) {
        out->push_back(unk_id);
      }
    }
  }
}

}  // namespace tessera
