#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::kernels {
namespace {

struct Chunks {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::set<std::thread::id> threads;
};

void Record(ThreadPool& pool, int64_t n, int64_t grain, Chunks& c) {
  pool.ParallelFor(n, grain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.ranges.emplace_back(b, e);
    c.threads.insert(std::this_thread::get_id());
  });
  std::sort(c.ranges.begin(), c.ranges.end());
}

TEST(ThreadPoolTest, PartitionsIntoContiguousGrainMultiples) {
  for (int size : {1, 2, 3, 4, 7}) {
    ThreadPool pool(size);
    EXPECT_EQ(pool.size(), size);
    for (int64_t n : {1, 2, 15, 16, 17, 100, 576, 1000}) {
      for (int64_t grain : {1, 3, 16, 64}) {
        Chunks c;
        Record(pool, n, grain, c);
        ASSERT_FALSE(c.ranges.empty());
        EXPECT_LE(static_cast<int>(c.ranges.size()), size);
        int64_t next = 0;
        for (size_t i = 0; i < c.ranges.size(); ++i) {
          const auto [b, e] = c.ranges[i];
          EXPECT_EQ(b, next) << "size=" << size << " n=" << n << " grain=" << grain;
          EXPECT_LT(b, e);
          if (i + 1 < c.ranges.size()) {
            EXPECT_EQ((e - b) % grain, 0);
          }
          next = e;
        }
        EXPECT_EQ(next, n);
        // Enough work is spread over as many threads as the grain allows.
        const int64_t expected_chunks = std::min<int64_t>(size, (n + grain - 1) / grain);
        EXPECT_EQ(static_cast<int64_t>(c.ranges.size()), expected_chunks);
      }
    }
  }
}

TEST(ThreadPoolTest, UsesDistinctThreadsIncludingCaller) {
  ThreadPool pool(3);
  Chunks c;
  pool.ParallelFor(3, 1, [&](int64_t, int64_t) {
    // Hold each chunk briefly so one thread cannot run them all in sequence.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(c.mu);
    c.threads.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(c.threads.size(), 3u);
  EXPECT_EQ(c.threads.count(std::this_thread::get_id()), 1u);
}

TEST(ThreadPoolTest, EmptyRangeCallsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(0, 16, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPoolTest, ConcurrentCallersAreSerialisedAndComplete) {
  ThreadPool pool(3);
  constexpr int kCallers = 4;
  constexpr int kRounds = 200;
  std::vector<int64_t> totals(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        std::atomic<int64_t> sum{0};
        pool.ParallelFor(1000, 7, [&](int64_t b, int64_t e) {
          int64_t s = 0;
          for (int64_t i = b; i < e; ++i) s += i;
          sum += s;
        });
        totals[c] += sum.load();
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(totals[c], kRounds * (999 * 1000 / 2));
}

TEST(ThreadPoolTest, ManySmallCallsInARow) {
  ThreadPool pool(2);
  std::vector<int> hits(64, 0);
  for (int r = 0; r < 20000; ++r) {
    pool.ParallelFor(64, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
  }
  for (int h : hits) EXPECT_EQ(h, 20000);
}

}  // namespace
}  // namespace tessera::kernels
