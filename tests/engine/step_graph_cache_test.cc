// The rule that decides when a captured step graph may be replayed
// (engine/step_graph_cache.h), driven through the sequence that broke it:
// prefill 20 tokens, capture decode, prefill 25 (which regrows a scratch
// buffer a decode graph had baked in), decode again. After the regrowth the
// old graph must never be returned; decode runs eagerly, then is captured
// anew against the new addresses.
#include "engine/step_graph_cache.h"

#include <memory>

#include "gtest/gtest.h"

namespace tessera {
namespace {

struct FakeGraph {
  int captured_at = 0;  // which run captured it
};

using Cache = StepGraphCache<FakeGraph>;

// What the runner does each step: replay if it can, else run eagerly and
// capture on the second eager run. Returns the graph replayed (or captured
// and launched), or null for an eager run.
FakeGraph* Step(Cache& cache, const Cache::Key& key, const Cache::Addresses& now, int run) {
  if (FakeGraph* g = cache.Find(key, now)) return g;
  if (!cache.ShouldCapture(key, now)) return nullptr;
  auto g = std::make_unique<FakeGraph>();
  g->captured_at = run;
  FakeGraph* raw = g.get();
  cache.Insert(key, now, std::move(g));
  return raw;
}

TEST(StepGraphCacheTest, RegrownScratchDropsGraphsThatBakedInTheOldAddress) {
  Cache cache;
  int a = 0, b = 0, c = 0;  // stand-ins for device buffers
  const void* x = &a;
  const void* conversion_small = &b;
  const void* conversion_large = &c;
  const Cache::Key prefill20{20, 1}, prefill25{25, 1}, decode{1, 1};

  EXPECT_EQ(Step(cache, prefill20, {x, conversion_small}, 1), nullptr);  // eager
  EXPECT_EQ(Step(cache, decode, {x, conversion_small}, 2), nullptr);     // eager, first
  FakeGraph* captured = Step(cache, decode, {x, conversion_small}, 3);   // captured
  ASSERT_NE(captured, nullptr);
  EXPECT_EQ(captured->captured_at, 3);
  EXPECT_EQ(Step(cache, decode, {x, conversion_small}, 4), captured);    // replayed
  EXPECT_EQ(cache.invalidations(), 0);

  // The longer prefill regrows the conversion scratch.
  EXPECT_EQ(Step(cache, prefill25, {x, conversion_large}, 5), nullptr);
  EXPECT_EQ(cache.size(), 0u) << "a graph holding the freed scratch survived";
  EXPECT_EQ(cache.invalidations(), 1);
  // Decode runs eagerly once with the new addresses, then is captured anew.
  EXPECT_EQ(Step(cache, decode, {x, conversion_large}, 6), nullptr);
  FakeGraph* recaptured = Step(cache, decode, {x, conversion_large}, 7);
  ASSERT_NE(recaptured, nullptr);
  EXPECT_EQ(recaptured->captured_at, 7);
  EXPECT_EQ(Step(cache, decode, {x, conversion_large}, 8), recaptured);
}

TEST(StepGraphCacheTest, AnyMovedAddressInvalidatesAndUnchangedOnesKeep) {
  Cache cache;
  int bufs[4];
  const Cache::Addresses base = {&bufs[0], &bufs[1], &bufs[2]};
  const Cache::Key k1{1, 1}, k2{2, 2};
  Step(cache, k1, base, 1);
  Step(cache, k1, base, 2);
  Step(cache, k2, base, 3);
  Step(cache, k2, base, 4);
  ASSERT_EQ(cache.size(), 2u);
  // Same addresses in a new vector: nothing dropped.
  EXPECT_NE(cache.Find(k1, Cache::Addresses(base)), nullptr);
  EXPECT_EQ(cache.size(), 2u);
  for (size_t i = 0; i < base.size(); ++i) {
    Cache fresh;
    Step(fresh, k1, base, 1);
    Step(fresh, k1, base, 2);
    ASSERT_EQ(fresh.size(), 1u);
    Cache::Addresses moved = base;
    moved[i] = &bufs[3];
    EXPECT_EQ(fresh.Find(k1, moved), nullptr) << "address " << i;
    EXPECT_EQ(fresh.size(), 0u) << "address " << i;
  }
  // An eager run counted against old addresses does not count after a move:
  // the first run with new addresses is eager again.
  Cache counting;
  EXPECT_FALSE(counting.ShouldCapture(k1, base));
  EXPECT_FALSE(counting.ShouldCapture(k1, {&bufs[3]}));
  EXPECT_TRUE(counting.ShouldCapture(k1, {&bufs[3]}));
}

}  // namespace
}  // namespace tessera
