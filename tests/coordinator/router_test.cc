// Replicas and failover against fake pipelines (fake_pipeline.h): a replica
// whose pipeline breaks or freezes mid-stream hands its sequences to another
// replica, and every client stream still ends with exactly the tokens the
// request gets alone (the fake's tokens are a hash of the whole history, the
// seed and the rng counter, so a lost, repeated or re-sampled token shows).
// With no replica left, streams end UNAVAILABLE naming the failure.
#include "coordinator/router.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_pipeline.h"
#include "tests/coordinator/stream_outcome.h"
#include "tests/coordinator/test_vocab.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kVocab = 300;


class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = TestTokenizer(kVocab);
    ASSERT_NE(tokenizer_, nullptr);
    config_.vocab_size = kVocab;
    fake_.vocab = kVocab;
    fake_.latency = absl::Milliseconds(2);
    options_.block_size = fake_.block_size;
    options_.max_context = 512;
  }

  void Start() {
    router_ = std::make_unique<Router>(tokenizer_.get(), config_, options_, router_options_);
    router_->set_on_fault([this](int slot, uint64_t /*epoch*/, const std::string& reason) {
      absl::MutexLock lock(&mu_);
      faults_.push_back(absl::StrCat(slot, ": ", reason));
      fault_time_ = absl::Now();
    });
  }

  // Installs a fake pipeline as replica `slot`.
  FakePipeline* Ready(int slot, FakePipelineOptions o) {
    auto pipe = std::make_unique<FakePipeline>(o);
    FakePipeline* raw = pipe.get();
    router_->ReplicaReady(slot, 1000 + slot, std::move(pipe), o.kv_blocks, 1);
    return raw;
  }

  RequestSpec Spec(int i, int32_t max_tokens) const {
    RequestSpec s;
    s.request_id = absl::StrCat("r", i);
    for (int k = 0; k < 6 + i; ++k) s.prompt.push_back((k * 31 + i * 17 + 3) % (kVocab - 1));
    s.max_tokens = max_tokens;
    s.ignore_eos = true;
    s.sampling.seed = 100 + i;
    return s;
  }

  std::vector<int32_t> Reference(const RequestSpec& spec) const {
    return ReferenceTokens(fake_, spec.prompt, spec.sampling.seed, spec.max_tokens,
                           spec.ignore_eos);
  }

  // Submits `n` requests and drains them all.
  std::vector<Outcome> Run(int n, int32_t max_tokens, std::vector<RequestSpec>* specs) {
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < n; ++i) {
      specs->push_back(Spec(i, max_tokens));
      auto s = router_->Submit(specs->back());
      EXPECT_TRUE(s.ok()) << s.status();
      streams.push_back(s.ok() ? *s : nullptr);
    }
    std::vector<Outcome> out;
    for (auto& s : streams) out.push_back(s == nullptr ? Outcome() : Drain(*s));
    return out;
  }

  // Request ids a fake was sent work for.
  static absl::flat_hash_set<std::string> Served(const FakePipeline& pipe) {
    absl::flat_hash_set<std::string> ids;
    for (const StepPlan& p : pipe.sent()) {
      for (const PlannedSequence& w : p.seqs) ids.insert(w.request_id);
    }
    return ids;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig config_;
  FakePipelineOptions fake_;
  SchedulerOptions options_;
  RouterOptions router_options_ = {Placement::kCacheAware, absl::ZeroDuration()};
  std::unique_ptr<Router> router_;
  absl::Mutex mu_;
  std::vector<std::string> faults_ ABSL_GUARDED_BY(mu_);
  absl::Time fault_time_ ABSL_GUARDED_BY(mu_);
};

TEST_F(RouterTest, NewRequestsSpreadOverTheReplicasByOutstandingWork) {
  Start();
  fake_.latency = absl::Milliseconds(5);
  FakePipeline* a = Ready(0, fake_);
  FakePipeline* b = Ready(1, fake_);
  std::vector<RequestSpec> specs;
  const std::vector<Outcome> out = Run(6, 16, &specs);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ended);
    EXPECT_TRUE(out[i].status.ok()) << out[i].status;
    EXPECT_EQ(out[i].ids, Reference(specs[i])) << specs[i].request_id;
  }
  EXPECT_EQ(Served(*a).size(), 3u);
  EXPECT_EQ(Served(*b).size(), 3u);
  EXPECT_EQ(router_->migrations(), 0);
}

// Eight requests, A A B B A A B B, where A and B are two 3-block prefixes
// followed by a token of each request's own.
std::vector<RequestSpec> PrefixedSpecs() {
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 8; ++i) {
    RequestSpec s;
    s.request_id = absl::StrCat("p", i);
    const int prefix = (i / 2) % 2;
    for (int k = 0; k < 12; ++k) s.prompt.push_back(10 + prefix * 100 + k);
    s.prompt.push_back(200 + i);
    s.max_tokens = 8;
    s.ignore_eos = true;
    s.sampling.seed = i;
    specs.push_back(s);
  }
  return specs;
}

TEST_F(RouterTest, PromptsSharingAPrefixGoToTheReplicaThatSawItFirst) {
  Start();
  fake_.latency = absl::Milliseconds(5);
  FakePipeline* a = Ready(0, fake_);
  FakePipeline* b = Ready(1, fake_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const RequestSpec& s : PrefixedSpecs()) streams.push_back(*router_->Submit(s));
  for (auto& s : streams) ASSERT_TRUE(Drain(*s).status.ok());
  EXPECT_THAT(Served(*a), ::testing::UnorderedElementsAre("p0", "p1", "p4", "p5"));
  EXPECT_THAT(Served(*b), ::testing::UnorderedElementsAre("p2", "p3", "p6", "p7"));
}

// One request at a time, so each finds what the earlier ones left in the
// cache: cache-aware placement reuses every earlier prefix (6 of the 8
// requests hit all 3 blocks), round-robin only the ones that land on the
// replica that saw the prefix before (4 of 8).
TEST_F(RouterTest, CacheAwarePlacementHitsThePrefixCacheMoreThanRoundRobin) {
  int64_t hits[2] = {0, 0};
  for (Placement p : {Placement::kCacheAware, Placement::kRoundRobin}) {
    router_options_.placement = p;
    Start();
    Ready(0, fake_);
    Ready(1, fake_);
    for (const RequestSpec& s : PrefixedSpecs()) ASSERT_TRUE(Drain(**router_->Submit(s)).ended);
    hits[p == Placement::kCacheAware ? 0 : 1] = router_->stats().prefix_hit_blocks;
    router_.reset();
  }
  EXPECT_EQ(hits[0], 18);
  EXPECT_EQ(hits[1], 12);
}

TEST_F(RouterTest, RoundRobinSpreadsEachPrefixOverBothReplicas) {
  router_options_.placement = Placement::kRoundRobin;
  Start();
  FakePipeline* a = Ready(0, fake_);
  FakePipeline* b = Ready(1, fake_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const RequestSpec& s : PrefixedSpecs()) streams.push_back(*router_->Submit(s));
  for (auto& s : streams) ASSERT_TRUE(Drain(*s).status.ok());
  EXPECT_THAT(Served(*a), ::testing::UnorderedElementsAre("p0", "p2", "p4", "p6"));
  EXPECT_THAT(Served(*b), ::testing::UnorderedElementsAre("p1", "p3", "p5", "p7"));
}

TEST_F(RouterTest, AReplicaClearlyBusierThanTheLeastLoadedIsPassedOverDespiteItsCache) {
  Start();
  fake_.latency = absl::Milliseconds(50);
  FakePipeline* a = Ready(0, fake_);
  FakePipeline* b = Ready(1, fake_);
  std::vector<RequestSpec> specs = PrefixedSpecs();
  std::vector<std::shared_ptr<RequestStream>> streams;
  // Ten requests with prefix A at once: the first five go where A went
  // (at most 4 more than the idle replica), the rest to the idle one.
  for (int i = 0; i < 10; ++i) {
    RequestSpec s = specs[0];
    s.request_id = absl::StrCat("a", i);
    s.prompt.back() = 200 + i;
    streams.push_back(*router_->Submit(s));
  }
  for (auto& s : streams) ASSERT_TRUE(Drain(*s).status.ok());
  EXPECT_EQ(Served(*a).size(), 5u);
  EXPECT_EQ(Served(*b).size(), 5u);
}

TEST_F(RouterTest, AReplicaThatJustBecameReadyRampsUp) {
  router_options_ = {Placement::kLeastLoaded, absl::Seconds(1)};
  Start();
  fake_.latency = absl::Milliseconds(20);
  FakePipeline* a = Ready(0, fake_);
  absl::SleepFor(absl::Milliseconds(1100));  // replica 0 has ramped up
  FakePipeline* b = Ready(1, fake_);
  // Replica 1 counts about max_seqs (8) more than its load for now: the
  // next requests go to replica 0 while it has fewer than that.
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(*router_->Submit(Spec(i, 20)));
  for (auto& s : streams) ASSERT_TRUE(Drain(*s).status.ok());
  EXPECT_EQ(Served(*a).size(), 4u);
  EXPECT_TRUE(Served(*b).empty());
}

TEST_F(RouterTest, ABrokenReplicasStreamsGoOnElsewhereWithTheSameTokens) {
  Start();
  FakePipelineOptions breaking = fake_;
  breaking.fail_after_steps = 10;
  Ready(0, breaking);  // destroyed by the failover
  FakePipeline* b = Ready(1, fake_);
  std::vector<RequestSpec> specs;
  const std::vector<Outcome> out = Run(6, 40, &specs);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ended) << specs[i].request_id;
    EXPECT_TRUE(out[i].status.ok()) << out[i].status;
    EXPECT_EQ(out[i].finish_reason, "length");
    EXPECT_EQ(out[i].ids, Reference(specs[i])) << specs[i].request_id;
  }
  // Replica 0 took three of them and finished none: they moved.
  EXPECT_EQ(Served(*b).size(), 6u);
  EXPECT_EQ(router_->migrations(), 3);
  EXPECT_FALSE(router_->replica_serving(0));
  EXPECT_TRUE(router_->replica_serving(1));
  absl::MutexLock lock(&mu_);
  auto reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !faults_.empty(); };
  ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&reported), absl::Seconds(10)));
  ASSERT_EQ(faults_.size(), 1u);
  EXPECT_THAT(faults_[0], HasSubstr("0: "));
  EXPECT_THAT(faults_[0], HasSubstr("the fake pipeline broke"));
  EXPECT_THAT(b->violations(), IsEmpty());
}

TEST_F(RouterTest, AFrozenReplicaIsCaughtByTheStepDeadlineAndItsStreamsMove) {
  options_.step_timeout = absl::Milliseconds(300);
  options_.step_timeout_factor = 0;  // the floor alone
  Start();
  FakePipelineOptions freezing = fake_;
  freezing.fail_after_steps = 10;
  freezing.hang = true;
  Ready(0, freezing);
  FakePipeline* b = Ready(1, fake_);
  std::vector<RequestSpec> specs;
  const std::vector<Outcome> out = Run(4, 30, &specs);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ended) << specs[i].request_id;
    EXPECT_TRUE(out[i].status.ok()) << out[i].status;
    EXPECT_EQ(out[i].ids, Reference(specs[i])) << specs[i].request_id;
  }
  EXPECT_EQ(router_->migrations(), 2);
  EXPECT_GE(router_->stats().deadline_failures, 1);
  absl::MutexLock lock(&mu_);
  auto reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !faults_.empty(); };
  ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&reported), absl::Seconds(10)));
  ASSERT_EQ(faults_.size(), 1u);
  EXPECT_THAT(faults_[0], HasSubstr("got no answer within 300ms"));
  EXPECT_THAT(b->violations(), IsEmpty());
}

TEST_F(RouterTest, WithNoReplicaLeftStreamsEndUnavailableAtOnce) {
  Start();
  FakePipelineOptions breaking = fake_;
  breaking.fail_after_steps = 8;
  Ready(0, breaking);
  std::vector<RequestSpec> specs;
  const std::vector<Outcome> out = Run(3, 40, &specs);
  // The streams end inside the failover; the rebuild callback comes after.
  absl::Time fault_time;
  {
    absl::MutexLock lock(&mu_);
    auto reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !faults_.empty(); };
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&reported), absl::Seconds(10)));
    ASSERT_EQ(faults_.size(), 1u);
    fault_time = fault_time_;
  }
  for (const Outcome& o : out) {
    ASSERT_TRUE(o.ended);
    EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
    EXPECT_THAT(o.status.message(), HasSubstr("replica 0 failed (the fake pipeline broke)"));
    EXPECT_THAT(o.status.message(), HasSubstr("no other replica is serving"));
    EXPECT_LT(o.ids.size(), 40u);
    EXPECT_LT(o.end_time - fault_time, absl::Seconds(2));
  }
  EXPECT_EQ(router_->stranded(), 3);
  EXPECT_FALSE(router_->serving());
  // New requests are refused, not queued.
  EXPECT_EQ(router_->Submit(Spec(9, 4)).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RouterTest, AMembershipLossMovesTheStreamsToo) {
  Start();
  fake_.latency = absl::Milliseconds(5);
  Ready(0, fake_);
  FakePipeline* b = Ready(1, fake_);
  std::vector<RequestSpec> specs;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) {
    specs.push_back(Spec(i, 40));
    streams.push_back(*router_->Submit(specs.back()));
  }
  absl::SleepFor(absl::Milliseconds(60));
  router_->ReplicaLost(0, "worker-1 (stage 0 of replica 0) disconnected");
  for (size_t i = 0; i < streams.size(); ++i) {
    const Outcome o = Drain(*streams[i]);
    ASSERT_TRUE(o.ended);
    EXPECT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.ids, Reference(specs[i])) << specs[i].request_id;
  }
  EXPECT_EQ(router_->migrations(), 2);
  EXPECT_THAT(b->violations(), IsEmpty());
}

TEST_F(RouterTest, AMoveLimitEndsARequestInsteadOfMovingIt) {
  options_.max_migrations = 0;
  Start();
  FakePipelineOptions breaking = fake_;
  breaking.fail_after_steps = 6;
  Ready(0, breaking);
  Ready(1, fake_);
  std::vector<RequestSpec> specs;
  const std::vector<Outcome> out = Run(2, 40, &specs);
  int limited = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ended);
    if (out[i].status.ok()) {
      EXPECT_EQ(out[i].ids, Reference(specs[i]));
    } else {
      EXPECT_EQ(out[i].status.code(), absl::StatusCode::kUnavailable);
      EXPECT_THAT(out[i].status.message(), HasSubstr("--max-migrations"));
      ++limited;
    }
  }
  EXPECT_EQ(limited, 1);
}

}  // namespace
}  // namespace tessera::testing
