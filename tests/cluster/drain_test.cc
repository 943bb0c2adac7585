// Graceful shutdown with real processes: SIGTERM on the coordinator drains
// it (health NOT_SERVING at once, new requests UNAVAILABLE, running streams
// finish, exit 0; a second SIGTERM exits at once); SIGTERM on a worker moves
// its replica's streams to another replica, or lets them finish when there
// is none, and the worker exits 0. A rolling restart of every worker of a
// 2 x 2 cluster under steady load fails no request and changes no token.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cluster.h"
#include "tests/cluster/fault_streams.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::tessera::testing::Cluster;
using ::tessera::testing::ExpectSameTokens;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::tessera::testing::Health;
using ::tessera::testing::HealthOf;
using ::tessera::testing::kStreams;
using ::tessera::testing::kTokens;
using ::tessera::testing::Options;
using ::tessera::testing::Reference;
using ::tessera::testing::RunWithFault;
using ::tessera::testing::Sampled;
using ::testing::HasSubstr;

// Polls the coordinator's health until it is `want`; how long that took.
absl::Duration UntilHealth(const std::string& address, Health::ServingStatus want) {
  const absl::Time start = absl::Now();
  while (HealthOf(address, "") != want && absl::Now() - start < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::Now() - start;
}

TEST(DrainTest, CoordinatorSigtermFinishesRunningStreamsRefusesNewOnesAndExitsZero) {
  Cluster cluster(Options(1));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> ref = Reference(cluster);
  Generation refused;
  absl::Duration to_not_serving;
  const std::vector<Generation> got = RunWithFault(cluster, 8, [&] {
    ASSERT_TRUE(cluster.coordinator().Signal(SIGTERM));
    to_not_serving = UntilHealth(cluster.address(), Health::NOT_SERVING);
    auto stub = cluster.InferenceStub();
    refused = Generate(stub.get(), Sampled(7));
  });
  ExpectSameTokens(got, ref);
  EXPECT_LT(to_not_serving, absl::Seconds(1));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("shutting down"));
  EXPECT_EQ(cluster.coordinator().WaitExit(absl::Seconds(30)), 0)
      << cluster.coordinator().output();
  EXPECT_THAT(cluster.coordinator().output(), HasSubstr("drained; exiting"));
}

TEST(DrainTest, ASecondSigtermEndsTheCoordinatorAtOnce) {
  Cluster cluster(Options(1));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  std::thread long_stream([&] {
    v1::GenerateRequest r = Sampled(0);
    r.set_max_tokens(400);
    auto stub = cluster.InferenceStub();
    Generate(stub.get(), r);
  });
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(cluster.coordinator().Signal(SIGTERM));
  ASSERT_TRUE(cluster.coordinator().WaitFor("draining", absl::Seconds(10)));
  const absl::Time second = absl::Now();
  ASSERT_TRUE(cluster.coordinator().Signal(SIGTERM));
  EXPECT_EQ(cluster.coordinator().WaitExit(absl::Seconds(10)), 1);
  EXPECT_LT(absl::Now() - second, absl::Seconds(1));
  long_stream.join();
}

TEST(DrainTest, AWorkerSigtermMovesItsStreamsToTheOtherReplicaAndExitsZero) {
  Cluster cluster(Options(2));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> ref = Reference(cluster);
  const std::vector<Generation> got =
      RunWithFault(cluster, 8, [&] { ASSERT_TRUE(cluster.worker(1).Signal(SIGTERM)); });
  ExpectSameTokens(got, ref);
  EXPECT_EQ(cluster.worker(1).WaitExit(absl::Seconds(30)), 0) << cluster.worker(1).output();
  EXPECT_THAT(cluster.coordinator().output(), HasSubstr("left: Terminated"));
  EXPECT_EQ(HealthOf(cluster.address(), ""), Health::SERVING);
}

TEST(DrainTest, AWorkerSigtermWithNoOtherReplicaLetsItsStreamsFinish) {
  Cluster cluster(Options(1));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> ref = Reference(cluster);
  const std::vector<Generation> got =
      RunWithFault(cluster, 8, [&] { ASSERT_TRUE(cluster.worker(0).Signal(SIGTERM)); });
  ExpectSameTokens(got, ref);
  EXPECT_EQ(cluster.worker(0).WaitExit(absl::Seconds(30)), 0) << cluster.worker(0).output();
  EXPECT_EQ(UntilHealth(cluster.address(), Health::NOT_SERVING) < absl::Seconds(5), true);
}

// The coordinator restarts (SIGTERM, then a new process on the same
// address): the workers notice, rejoin it with backoff, get their stages
// back (weights still loaded) and serve the same tokens.
TEST(DrainTest, WorkersRejoinARestartedCoordinator) {
  Cluster cluster(Options(1));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> ref = Reference(cluster);
  auto loads = [&] {
    const std::string out = cluster.worker(0).output();
    int n = 0;
    for (size_t at = out.find("loading:"); at != std::string::npos;
         at = out.find("loading:", at + 1)) {
      ++n;
    }
    return n;
  };
  const int loads_before = loads();
  ASSERT_GT(loads_before, 0);
  ASSERT_TRUE(cluster.coordinator().Signal(SIGTERM));
  ASSERT_EQ(cluster.coordinator().WaitExit(absl::Seconds(30)), 0);
  ASSERT_TRUE(cluster.worker(0).WaitFor("lost the coordinator", absl::Seconds(10)));
  cluster.RestartCoordinator();
  ASSERT_TRUE(cluster.coordinator().WaitFor("pipeline ready", absl::Seconds(60)))
      << cluster.coordinator().output();
  EXPECT_EQ(HealthOf(cluster.address(), ""), Health::SERVING);
  ExpectSameTokens(Reference(cluster), ref);
  // Same ranges as before: the workers kept their weights (no reload).
  EXPECT_EQ(loads(), loads_before);
}

TEST(DrainTest, ARollingRestartUnderLoadFailsNothingAndChangesNoToken) {
  Cluster cluster(Options(2));
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  const std::vector<Generation> ref = Reference(cluster);
  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed{0}, changed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      auto stub = cluster.InferenceStub();
      for (int n = c; !stop.load(); n += 3) {
        const Generation g = Generate(stub.get(), Sampled(n % kStreams));
        if (!g.status.ok()) {
          ++failed;
          std::printf("failed: %s\n", g.status.error_message().c_str());
        } else if (g.ids != ref[n % kStreams].ids) {
          ++changed;
        }
        ++served;
      }
    });
  }
  int ready_lines = 2;
  for (int i = 0; i < cluster.num_workers(); ++i) {
    SCOPED_TRACE(absl::StrCat("restarting worker ", i));
    // Requests keep completing between restarts, so every leave meets load.
    const int before = served.load();
    while (served.load() < before + 2) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(cluster.worker(i).Signal(SIGTERM));
    EXPECT_EQ(cluster.worker(i).WaitExit(absl::Seconds(30)), 0);
    cluster.RestartWorker(i);
    ++ready_lines;
    ASSERT_TRUE(cluster.coordinator().WaitForCount("pipeline ready", ready_lines,
                                                   absl::Seconds(60)))
        << cluster.coordinator().output();
  }
  stop = true;
  for (auto& t : clients) t.join();
  std::printf("rolling restart: %d requests served, %d failed, %d changed\n", served.load(),
              failed.load(), changed.load());
  EXPECT_GE(served.load(), 8);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(changed.load(), 0);
}

}  // namespace
}  // namespace tessera
