// CpuCollectiveGroup against independent references: float64 sums, a
// hand-ordered float32 sum, and plain copies; and RankThreads, which runs a
// group's ranks.
#include "engine/cpu_collective.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "engine/rank_threads.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

// Runs fn(rank) on one thread per rank and returns each rank's status.
std::vector<absl::Status> RunRanks(CpuCollectiveGroup& group,
                                   const std::function<absl::Status(Collective*)>& fn) {
  std::vector<absl::Status> status(group.size());
  std::vector<std::thread> threads;
  for (int r = 0; r < group.size(); ++r) {
    threads.emplace_back([&, r] { status[r] = fn(group.rank(r)); });
  }
  for (std::thread& t : threads) t.join();
  return status;
}

// Values spanning many magnitudes with both signs, so the summation order
// changes the float32 result.
std::vector<std::vector<float>> RankData(int ranks, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> exponent(0.0f, 4.0f), value(0.0f, 1.0f);
  std::vector<std::vector<float>> data(ranks, std::vector<float>(n));
  for (auto& v : data) {
    for (float& x : v) x = value(rng) * std::exp(exponent(rng));
  }
  return data;
}

TEST(CpuCollectiveTest, AllReduceSumsInRankOrderOnEveryRank) {
  // 1001 is not a multiple of the rank count; 1 leaves most ranks no chunk.
  for (const auto& [ranks, count] :
       {std::pair<int, int64_t>{2, 1001}, {3, 1001}, {4, 1001}, {4, 1}}) {
    const int64_t n = count;  // a lambda cannot capture a structured binding (C++17)
    const auto input = RankData(ranks, n, 7 + ranks);
    CpuCollectiveGroup group(ranks);
    std::vector<std::vector<float>> data = input;
    auto status = RunRanks(group, [&](Collective* c) {
      return c->AllReduceSum(data[c->rank()].data(), n);
    });
    for (const auto& s : status) ASSERT_THAT(s, IsOk());
    for (int64_t i = 0; i < n; ++i) {
      // The documented order: ((x0 + x1) + x2) + ... in float32.
      float ordered = input[0][i];
      double exact = input[0][i], magnitude = std::fabs(input[0][i]);
      for (int r = 1; r < ranks; ++r) {
        ordered += input[r][i];
        exact += input[r][i];
        magnitude += std::fabs(input[r][i]);
      }
      for (int r = 0; r < ranks; ++r) {
        ASSERT_EQ(data[r][i], ordered) << "rank " << r << " element " << i;
      }
      // Recursive summation: |error| <= (N-1) u sum|x|, u = 2^-24.
      EXPECT_LE(std::fabs(ordered - exact), (ranks - 1) * std::ldexp(1.0, -24) * magnitude)
          << "element " << i;
    }
  }
}

TEST(CpuCollectiveTest, AllReduceIsRepeatableAcrossRuns) {
  const int ranks = 4;
  const int64_t n = 4099;
  const auto input = RankData(ranks, n, 3);
  CpuCollectiveGroup group(ranks);
  std::vector<float> first;
  for (int run = 0; run < 20; ++run) {
    std::vector<std::vector<float>> data = input;
    auto status = RunRanks(group, [&](Collective* c) {
      // Back-to-back calls exercise the phase barriers between operations.
      for (int k = 0; k < 3; ++k) {
        if (k > 0) data[c->rank()] = input[c->rank()];
        absl::Status s = c->AllReduceSum(data[c->rank()].data(), n);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    });
    for (const auto& s : status) ASSERT_THAT(s, IsOk());
    if (run == 0) first = data[0];
    for (int r = 0; r < ranks; ++r) {
      ASSERT_EQ(0, std::memcmp(first.data(), data[r].data(), n * sizeof(float)))
          << "run " << run << " rank " << r;
    }
  }
}

TEST(CpuCollectiveTest, AllGatherConcatenatesInRankOrder) {
  const int ranks = 3;
  const int64_t n = 5;
  CpuCollectiveGroup group(ranks);
  std::vector<std::vector<float>> out(ranks, std::vector<float>(ranks * n, -1.0f));
  auto status = RunRanks(group, [&](Collective* c) {
    std::vector<float> mine(n);
    for (int64_t i = 0; i < n; ++i) mine[i] = 100.0f * c->rank() + i;
    return c->AllGather(mine.data(), n, out[c->rank()].data());
  });
  for (const auto& s : status) ASSERT_THAT(s, IsOk());
  const std::vector<float> expected = {0, 1, 2, 3, 4, 100, 101, 102, 103, 104,
                                       200, 201, 202, 203, 204};
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(out[r], expected) << "rank " << r;
}

TEST(CpuCollectiveTest, BroadcastCopiesTheRoot) {
  const int ranks = 4;
  CpuCollectiveGroup group(ranks);
  std::vector<std::vector<float>> data(ranks);
  for (int r = 0; r < ranks; ++r) data[r] = {float(r), float(r) + 0.5f};
  auto status = RunRanks(group, [&](Collective* c) {
    return c->Broadcast(data[c->rank()].data(), 2, /*root=*/2);
  });
  for (const auto& s : status) ASSERT_THAT(s, IsOk());
  for (int r = 0; r < ranks; ++r) EXPECT_THAT(data[r], ::testing::ElementsAre(2.0f, 2.5f));
}

TEST(CpuCollectiveTest, MismatchedCountsFailOnEveryRank) {
  CpuCollectiveGroup group(2);
  std::vector<float> a(8), b(8);
  auto status = RunRanks(group, [&](Collective* c) {
    return c->AllReduceSum(c->rank() == 0 ? a.data() : b.data(), c->rank() == 0 ? 8 : 6);
  });
  for (const auto& s : status) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("rank 0 passed 8 elements but rank 1 passed 6")));
  }
}

TEST(CpuCollectiveTest, BadRootIsRefused) {
  CpuCollectiveGroup group(1);
  float x = 1.0f;
  EXPECT_THAT(group.rank(0)->Broadcast(&x, 1, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("root 3")));
}

TEST(CpuCollectiveTest, AbortReleasesRanksWaitingForAPeer) {
  CpuCollectiveGroup group(3);
  std::vector<absl::Status> status(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] { status[r] = group.rank(r)->Barrier(); });
  }
  // Rank 2 never arrives; it gives up instead.
  group.Abort("rank 2 could not load its shard");
  for (std::thread& t : threads) t.join();
  for (const auto& s : status) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled, HasSubstr("rank 2 could not load")));
  }
  EXPECT_THAT(group.rank(2)->Barrier(), StatusIs(absl::StatusCode::kCancelled, ::testing::_));
  group.Reset();
  auto after = RunRanks(group, [](Collective* c) { return c->Barrier(); });
  for (const auto& s : after) EXPECT_THAT(s, IsOk());
}

// Every Run calls each rank once, rank 0 on the caller's thread and the
// others on threads that stay the same from run to run, all at the same time
// (each rank waits, with a deadline so a failure cannot hang the test, until
// every rank of the run has started), and returns only when all are done.
TEST(RankThreadsTest, RunsEveryRankOnceConcurrentlyOnPersistentThreads) {
  constexpr int kRanks = 4;
  RankThreads threads(kRanks);
  EXPECT_EQ(threads.size(), kRanks);
  std::vector<std::thread::id> first_ids(kRanks);
  for (int run = 0; run < 50; ++run) {
    std::atomic<int> started{0};
    std::vector<int> calls(kRanks, 0);
    std::vector<std::thread::id> ids(kRanks);
    std::vector<char> met(kRanks, 0);  // not vector<bool>: ranks write at once
    threads.Run([&](int r) {
      ++calls[r];
      ids[r] = std::this_thread::get_id();
      started.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started.load() < kRanks && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      met[r] = started.load() == kRanks;
    });
    for (int r = 0; r < kRanks; ++r) {
      EXPECT_EQ(calls[r], 1) << "run " << run << " rank " << r;
      EXPECT_TRUE(met[r]) << "run " << run << ": rank " << r << " never saw all ranks running";
    }
    EXPECT_EQ(ids[0], std::this_thread::get_id());
    if (run == 0) first_ids = ids;
    EXPECT_EQ(ids, first_ids) << "run " << run;
    for (int r = 1; r < kRanks; ++r) EXPECT_NE(ids[r], ids[0]);
  }
}

TEST(RankThreadsTest, OneRankRunsOnTheCaller) {
  RankThreads threads(1);
  std::thread::id id;
  threads.Run([&](int r) {
    EXPECT_EQ(r, 0);
    id = std::this_thread::get_id();
  });
  EXPECT_EQ(id, std::this_thread::get_id());
}

}  // namespace
}  // namespace tessera::testing
