// The coordinator's block pool and prefix cache, on its own.
#include "coordinator/kv_block_pool.h"

#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<int32_t> Tokens(int n, int salt) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(i * 7 + salt);
  return t;
}

TEST(KvBlockPoolTest, AllocatesLowIdsFirstAndRefusesWhatItDoesNotHave) {
  KvBlockPool pool(4, 2);
  std::vector<int32_t> table;
  ASSERT_TRUE(pool.Allocate(3, &table));
  EXPECT_THAT(table, ElementsAre(0, 1, 2));
  EXPECT_EQ(pool.free_blocks(), 1);
  EXPECT_FALSE(pool.Allocate(2, &table));
  EXPECT_EQ(table.size(), 3u) << "a refused allocation changes nothing";
  pool.Release(table);
  EXPECT_EQ(pool.free_blocks(), 4);
}

TEST(KvBlockPoolTest, ARegisteredPrefixIsMatchedBlockByBlock) {
  KvBlockPool pool(8, 2);
  const std::vector<int32_t> a = Tokens(6, 1);  // three full blocks
  std::vector<int32_t> ta;
  ASSERT_TRUE(pool.Allocate(3, &ta));
  pool.Register(a, ta, 0, 3);
  EXPECT_EQ(pool.cached_blocks(), 3);

  // Same first two blocks, different third.
  std::vector<int32_t> b = a;
  b[5] += 1;
  std::vector<int32_t> tb;
  EXPECT_EQ(pool.Match(b, 10, &tb), 2);
  EXPECT_EQ(tb, std::vector<int32_t>(ta.begin(), ta.begin() + 2));
  // max_blocks caps the match (the scheduler keeps the last token to compute).
  std::vector<int32_t> tc;
  EXPECT_EQ(pool.Match(a, 1, &tc), 1);
  // A different first block matches nothing, even with equal later blocks.
  std::vector<int32_t> d = a;
  d[0] += 100;
  std::vector<int32_t> td;
  EXPECT_EQ(pool.Match(d, 10, &td), 0);
  EXPECT_THAT(td, IsEmpty());
  EXPECT_EQ(pool.hit_blocks(), 3);
}

TEST(KvBlockPoolTest, SharedBlocksComeBackOnlyWhenTheLastUserLetsGo) {
  KvBlockPool pool(3, 2);
  const std::vector<int32_t> a = Tokens(4, 2);
  std::vector<int32_t> ta;
  ASSERT_TRUE(pool.Allocate(2, &ta));
  pool.Register(a, ta, 0, 2);
  std::vector<int32_t> tb;
  ASSERT_EQ(pool.Match(a, 2, &tb), 2);
  EXPECT_EQ(pool.free_blocks(), 1);
  pool.Release(ta);
  EXPECT_EQ(pool.free_blocks(), 1) << "b still uses both blocks";
  pool.Release(tb);
  EXPECT_EQ(pool.free_blocks(), 3) << "unused cached blocks count as free";
  EXPECT_EQ(pool.cached_blocks(), 2);
}

TEST(KvBlockPoolTest, EvictsTheLeastRecentlyReleasedCachedBlockFirst) {
  KvBlockPool pool(2, 2);
  const std::vector<int32_t> a = Tokens(2, 3);
  const std::vector<int32_t> b = Tokens(2, 4);
  std::vector<int32_t> ta, tb;
  ASSERT_TRUE(pool.Allocate(1, &ta));
  ASSERT_TRUE(pool.Allocate(1, &tb));
  pool.Register(a, ta, 0, 1);
  pool.Register(b, tb, 0, 1);
  pool.Release(ta);  // released first: evicted first
  pool.Release(tb);
  std::vector<int32_t> fresh;
  ASSERT_TRUE(pool.Allocate(1, &fresh));
  EXPECT_EQ(fresh[0], ta[0]);
  std::vector<int32_t> m;
  EXPECT_EQ(pool.Match(a, 1, &m), 0) << "a's block was evicted";
  EXPECT_EQ(pool.Match(b, 1, &m), 1) << "b's block is still cached";
}

TEST(KvBlockPoolTest, ABlockWhosePrefixIsCachedElsewhereStaysPrivate) {
  KvBlockPool pool(4, 2);
  const std::vector<int32_t> a = Tokens(2, 5);
  std::vector<int32_t> t1, t2;
  ASSERT_TRUE(pool.Allocate(1, &t1));
  ASSERT_TRUE(pool.Allocate(1, &t2));
  pool.Register(a, t1, 0, 1);
  pool.Register(a, t2, 0, 1);  // the same content computed twice
  EXPECT_EQ(pool.cached_blocks(), 1);
  pool.Release(t2);
  EXPECT_EQ(pool.free_blocks(), 3) << "the private copy is plain free";
  std::vector<int32_t> m;
  ASSERT_EQ(pool.Match(a, 1, &m), 1);
  EXPECT_EQ(m[0], t1[0]);
}

TEST(KvBlockPoolTest, ResetForgetsEverything) {
  KvBlockPool pool(4, 2);
  std::vector<int32_t> t;
  ASSERT_TRUE(pool.Allocate(2, &t));
  pool.Register(Tokens(4, 6), t, 0, 2);
  pool.Reset(6, 4);
  EXPECT_EQ(pool.total(), 6);
  EXPECT_EQ(pool.free_blocks(), 6);
  EXPECT_EQ(pool.cached_blocks(), 0);
  EXPECT_EQ(pool.hit_blocks(), 0);
}

}  // namespace
}  // namespace tessera
