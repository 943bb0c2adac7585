// Which captured step graphs may be replayed, and when to capture one.
//
// A captured CUDA graph bakes in every device address its kernels read and
// write: the runner's scratch buffers, cuBLASLt's workspace and conversion
// scratch, the KV pool. If any of those is reallocated after capture (a
// longer prefill grows a buffer), replaying the graph reads and writes freed
// memory. So each graph is kept together with the addresses it was captured
// against, and every lookup passes the addresses as they are now: when they
// differ, every graph is dropped (they were all captured against the old
// set), and a shape must run eagerly again before it is captured anew.
//
// Capture happens on a shape's second eager run (with the current
// addresses): the first has grown every buffer and built every plan, so
// capturing allocates nothing.
//
// No CUDA here, so the rule has a unit test on any machine
// (tests/engine/step_graph_cache_test.cc); the CUDA runner instantiates it
// with its graph type.
//
// Thread-safety: none; one owner (the runner, which runs one step at a time).
#ifndef TESSERA_ENGINE_STEP_GRAPH_CACHE_H_
#define TESSERA_ENGINE_STEP_GRAPH_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace tessera {

template <typename Graph>
class StepGraphCache {
 public:
  // A step shape: (tokens, logit rows).
  using Key = std::pair<int64_t, int64_t>;
  // Every device address a captured step touches, in a fixed order.
  using Addresses = std::vector<const void*>;

  // The graph captured for `key` against exactly `now`, or null. Addresses
  // other than those of the cached graphs drop them all first.
  Graph* Find(const Key& key, const Addresses& now) {
    Revalidate(now);
    auto it = graphs_.find(key);
    return it == graphs_.end() ? nullptr : it->second.get();
  }

  // Counts an eager run of `key` with `now`; true when this run should be
  // captured (the shape has already run once eagerly with these addresses).
  bool ShouldCapture(const Key& key, const Addresses& now) {
    Revalidate(now);
    return eager_runs_[key]++ >= 1;
  }

  // Keeps `graph`, captured for `key` against `captured`.
  void Insert(const Key& key, const Addresses& captured, std::unique_ptr<Graph> graph) {
    Revalidate(captured);
    graphs_[key] = std::move(graph);
  }

  // Drops every graph (and the eager-run counts).
  void Clear() {
    graphs_.clear();
    eager_runs_.clear();
  }

  size_t size() const { return graphs_.size(); }
  // Times every graph was dropped because an address moved.
  int64_t invalidations() const { return invalidations_; }

 private:
  void Revalidate(const Addresses& now) {
    if (now == addresses_) return;
    if (!graphs_.empty() || !eager_runs_.empty()) ++invalidations_;
    graphs_.clear();
    eager_runs_.clear();
    addresses_ = now;
  }

  Addresses addresses_;
  std::map<Key, std::unique_ptr<Graph>> graphs_;
  std::map<Key, int> eager_runs_;
  int64_t invalidations_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_STEP_GRAPH_CACHE_H_
