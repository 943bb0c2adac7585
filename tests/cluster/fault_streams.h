// What the failover and drain tests share: four seeded, sampled requests,
// run one at a time on a healthy cluster (the reference) or all at once
// with a fault injected mid-stream, and the check that a run gave exactly
// the reference's tokens.
#ifndef TESSERA_TESTS_CLUSTER_FAULT_STREAMS_H_
#define TESSERA_TESTS_CLUSTER_FAULT_STREAMS_H_

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "testing/cluster.h"
#include "tessera/v1/inference.grpc.pb.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {

using Health = ::grpc::health::v1::HealthCheckResponse;

inline constexpr int kStreams = 4;
inline constexpr int kTokens = 48;

inline tessera::v1::GenerateRequest Sampled(int i) {
  tessera::v1::GenerateRequest r;
  r.set_text(absl::StrCat("Story number ", i, ": once upon a time"));
  r.set_max_tokens(kTokens);
  r.set_ignore_eos(true);
  // Stream 3 is greedy, the others seeded sampling.
  r.mutable_sampling()->set_temperature(i % kStreams == 3 ? 0.0f : 0.8f);
  r.mutable_sampling()->set_top_p(0.95f);
  r.mutable_sampling()->set_seed(1000 + i);
  return r;
}

inline Health::ServingStatus HealthOf(const std::string& address, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  Health r;
  return stub->Check(&ctx, req, &r).ok() ? r.status() : Health::SERVICE_UNKNOWN;
}

inline ClusterOptions Options(int replicas) {
  ClusterOptions o;
  o.model = DefaultModelPath();
  o.workers = 2;
  o.replicas = replicas;
  o.coordinator_flags = {"--max-context=512", "--heartbeat-timeout-ms=1500", "--ramp-up-s=0"};
  return o;
}

// Runs the kStreams requests at once; once every stream has at least
// `tokens_before` tokens, calls `fault` (on this thread) and lets them end.
inline std::vector<Generation> RunWithFault(Cluster& cluster, int tokens_before,
                                     const std::function<void()>& fault) {
  std::vector<Generation> out(kStreams);
  std::vector<std::atomic<int64_t>> seen(kStreams);
  std::vector<std::atomic<bool>> ended(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      auto stub = cluster.InferenceStub();
      out[i] = Generate(stub.get(), Sampled(i), absl::Seconds(120), &seen[i]);
      ended[i] = true;
    });
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  for (;;) {
    bool all = true;
    for (const auto& s : seen) all = all && s.load() >= tokens_before;
    if (all || absl::Now() > give_up) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  fault();
  // How long each stream waits for its next token after the fault (printed,
  // not asserted: docs/perf.md records it).
  const absl::Time at = absl::Now();
  std::vector<int64_t> before(kStreams);
  for (int i = 0; i < kStreams; ++i) before[i] = seen[i].load();
  std::vector<absl::Duration> next(kStreams, absl::InfiniteDuration());
  while (absl::Now() - at < absl::Seconds(30)) {
    bool all = true;
    for (int i = 0; i < kStreams; ++i) {
      if (next[i] == absl::InfiniteDuration() && seen[i].load() > before[i]) {
        next[i] = absl::Now() - at;
      }
      all = all && (next[i] != absl::InfiniteDuration() || ended[i].load());
    }
    if (all) break;
    absl::SleepFor(absl::Microseconds(500));
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    if (next[i] != absl::InfiniteDuration()) {
      std::printf("stream %d: next token %s after the fault\n", i,
                  absl::FormatDuration(next[i]).c_str());
    }
  }
  return out;
}

// The requests alone, one after another, on a healthy cluster.
inline std::vector<Generation> Reference(Cluster& cluster) {
  std::vector<Generation> ref;
  auto stub = cluster.InferenceStub();
  for (int i = 0; i < kStreams; ++i) ref.push_back(Generate(stub.get(), Sampled(i)));
  return ref;
}

inline void ExpectSameTokens(const std::vector<Generation>& got,
                             const std::vector<Generation>& ref) {
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(ref[i].status.ok()) << ref[i].status.error_message();
    EXPECT_TRUE(got[i].status.ok()) << "stream " << i << ": " << got[i].status.error_message();
    EXPECT_EQ(got[i].ids.size(), static_cast<size_t>(kTokens)) << "stream " << i;
    EXPECT_EQ(got[i].ids, ref[i].ids) << "stream " << i;
    EXPECT_EQ(got[i].text, ref[i].text) << "stream " << i;
  }
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_CLUSTER_FAULT_STREAMS_H_
