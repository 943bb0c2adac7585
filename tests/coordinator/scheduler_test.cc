// The scheduler against a fake pipeline that simulates the stages' KV
// (fake_pipeline.h): every request's tokens must equal what the fake gives
// the prompt alone, however the scheduler batches, chunks, preempts, reuses
// prefixes or cancels, and the fake records any step that would have read
// or written the wrong KV. No gRPC, no model: this runs under the
// sanitizer build too.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
constexpr int kEos = kVocab - 1;


class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = TestTokenizer(kVocab);
    ASSERT_NE(tokenizer_, nullptr);
    config_.vocab_size = kVocab;
    fake_.vocab = kVocab;
    fake_.eos_id = kEos;
    options_.block_size = fake_.block_size;
    options_.max_context = 512;
  }

  // Starts the scheduler on a fresh fake pipeline of `stages` stages.
  void Start(int stages = 1) {
    options_.block_size = fake_.block_size;
    fake_.max_batch_tokens = options_.max_batch_tokens;
    scheduler_ = std::make_unique<Scheduler>(tokenizer_.get(), config_, options_);
    auto pipe = std::make_unique<FakePipeline>(fake_);
    pipe_ = pipe.get();
    scheduler_->SetPipeline(std::move(pipe), fake_.kv_blocks, stages, "");
  }

  RequestSpec Spec(const std::string& id, std::vector<int32_t> prompt, int32_t max_tokens,
                   uint64_t seed = 7) {
    RequestSpec s;
    s.request_id = id;
    s.prompt = std::move(prompt);
    s.max_tokens = max_tokens;
    s.sampling.seed = seed;
    return s;
  }

  std::shared_ptr<RequestStream> Submit(RequestSpec spec) {
    auto s = scheduler_->Submit(std::move(spec));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }

  std::vector<int32_t> Reference(const RequestSpec& spec) const {
    return ReferenceTokens(fake_, spec.prompt, spec.sampling.seed, spec.max_tokens,
                           spec.ignore_eos);
  }

  // Every block back in the pool and every sequence released on the stages.
  bool Quiescent(absl::Duration timeout = absl::Seconds(10)) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      const SchedulerStats st = scheduler_->stats();
      if (st.free_blocks == st.total_blocks && st.running == 0 && st.queued == 0 &&
          pipe_->live_sequences() == 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  static std::vector<int32_t> Prompt(int n, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back((i * 31 + salt * 17 + 3) % (kVocab - 1));
    return p;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig config_;
  FakePipelineOptions fake_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  FakePipeline* pipe_ = nullptr;  // owned by the scheduler
};

TEST_F(SchedulerTest, OneRequestGetsTheReferenceTokens) {
  Start();
  RequestSpec spec = Spec("r1", Prompt(10, 1), 20);
  auto stream = Submit(spec);
  const Outcome o = Drain(*stream);
  ASSERT_TRUE(o.ended);
  EXPECT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(o.finish_reason, "length");
  EXPECT_EQ(o.ids, Reference(spec));
  EXPECT_TRUE(Quiescent());
  EXPECT_THAT(pipe_->violations(), IsEmpty());
}

TEST_F(SchedulerTest, LongPromptsGoInChunksOfTheTokenBudget) {
  options_.max_batch_tokens = 8;
  Start();
  RequestSpec spec = Spec("chunked", Prompt(30, 2), 5);
  const Outcome o = Drain(*Submit(spec));
  EXPECT_EQ(o.ids, Reference(spec));
  std::vector<int> sizes;
  for (const StepPlan& p : pipe_->sent()) {
    ASSERT_EQ(p.seqs.size(), 1u);
    sizes.push_back(static_cast<int>(p.seqs[0].tokens.size()));
  }
  // Four prompt chunks (the last one samples), then one decode per token.
  EXPECT_EQ(absl::StrJoin(sizes, ","), "8,8,8,6,1,1,1,1");
  EXPECT_EQ(scheduler_->stats().prefill_chunks, 4);
  EXPECT_THAT(pipe_->violations(), IsEmpty());
}

TEST_F(SchedulerTest, ZeroMaxTokensEndsAtOnceWithoutAStep) {
  Start();
  const Outcome o = Drain(*Submit(Spec("none", Prompt(4, 3), 0)));
  EXPECT_TRUE(o.ended);
  EXPECT_EQ(o.finish_reason, "length");
  EXPECT_THAT(o.ids, IsEmpty());
  EXPECT_THAT(pipe_->sent(), IsEmpty());
}

TEST_F(SchedulerTest, EndOfGenerationAndStopIdsEndWithStop) {
  fake_.eos_every = 6;
  Start();
  RequestSpec spec = Spec("eos", Prompt(5, 4), 64);
  const std::vector<int32_t> want = Reference(spec);
  ASSERT_LT(want.size(), 64u) << "the fake never sampled EOS; pick another seed";
  Outcome o = Drain(*Submit(spec));
  EXPECT_EQ(o.ids, want);
  EXPECT_EQ(o.finish_reason, "stop");

  spec.request_id = "ignore-eos";
  spec.ignore_eos = true;
  spec.max_tokens = static_cast<int32_t>(want.size()) + 3;
  o = Drain(*Submit(spec));
  EXPECT_EQ(o.ids, Reference(spec));
  ASSERT_EQ(o.ids.size(), want.size() + 3);
  EXPECT_EQ(o.ids[want.size()], kEos) << "EOS is an ordinary token under ignore_eos";
  EXPECT_EQ(o.finish_reason, "length");

  // A stop id ends the request before it: the id itself is not output.
  spec.request_id = "stop-id";
  spec.ignore_eos = false;
  spec.max_tokens = 64;
  ASSERT_GE(want.size(), 3u);
  spec.stop_token_ids = {want[2]};
  o = Drain(*Submit(spec));
  const auto first = std::find(want.begin(), want.end(), want[2]);
  EXPECT_EQ(o.ids, std::vector<int32_t>(want.begin(), first));
  EXPECT_EQ(o.finish_reason, "stop");
  EXPECT_TRUE(Quiescent());
}

// The same requests under every batching shape the options allow: each
// request's tokens are the reference, and no step breaks a KV rule.
TEST_F(SchedulerTest, ConcurrentRequestsGetTheirOwnTokensUnderEveryBatchShape) {
  for (int micro : {1, 2, 3}) {
    for (int budget : {3, 16, 512}) {
      SCOPED_TRACE(absl::StrCat("micro_batches ", micro, ", max_batch_tokens ", budget));
      options_.micro_batches = micro;
      options_.max_batch_tokens = budget;
      options_.max_seqs = 5;
      Start(micro);
      std::vector<RequestSpec> specs;
      std::vector<std::shared_ptr<RequestStream>> streams;
      for (int i = 0; i < 9; ++i) {
        specs.push_back(Spec(absl::StrCat("c", i), Prompt(3 + i * 5, i), 4 + i, 100 + i));
        streams.push_back(Submit(specs.back()));
      }
      for (int i = 0; i < 9; ++i) {
        const Outcome o = Drain(*streams[i]);
        EXPECT_TRUE(o.status.ok()) << o.status;
        EXPECT_EQ(o.ids, Reference(specs[i])) << specs[i].request_id;
      }
      EXPECT_TRUE(Quiescent());
      EXPECT_THAT(pipe_->violations(), IsEmpty());
      EXPECT_LE(scheduler_->stats().max_steps_in_flight, micro);
      scheduler_.reset();
    }
  }
}

TEST_F(SchedulerTest, PreemptionRecomputesAndChangesNoToken) {
  fake_.kv_blocks = 12;  // 48 positions; four requests want 24 each
  options_.max_seqs = 4;
  options_.max_batch_tokens = 8;
  Start();
  std::vector<RequestSpec> specs;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) {
    specs.push_back(Spec(absl::StrCat("p", i), Prompt(8, 10 + i), 16, i));
    streams.push_back(Submit(specs.back()));
  }
  for (int i = 0; i < 4; ++i) {
    const Outcome o = Drain(*streams[i]);
    EXPECT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.ids, Reference(specs[i])) << specs[i].request_id;
  }
  EXPECT_GT(scheduler_->stats().preemptions, 0) << "the test did not exercise preemption";
  EXPECT_TRUE(Quiescent());
  EXPECT_THAT(pipe_->violations(), IsEmpty());
}

TEST_F(SchedulerTest, APromptThatStartsWithCachedBlocksReusesThem) {
  Start();
  std::vector<int32_t> shared = Prompt(16, 20);  // four full blocks of 4
  RequestSpec a = Spec("a", shared, 3);
  a.prompt.push_back(5);
  EXPECT_EQ(Drain(*Submit(a)).ids, Reference(a));
  RequestSpec b = Spec("b", shared, 6, 99);
  b.prompt.push_back(6);
  b.prompt.push_back(7);
  EXPECT_EQ(Drain(*Submit(b)).ids, Reference(b));
  EXPECT_EQ(scheduler_->stats().prefix_hit_blocks, 4);
  const std::vector<StepPlan> sent = pipe_->sent();
  const PlannedSequence* first_b = nullptr;
  for (const StepPlan& p : sent) {
    for (const PlannedSequence& w : p.seqs) {
      if (w.request_id == "b" && first_b == nullptr) first_b = &w;
    }
  }
  ASSERT_NE(first_b, nullptr);
  EXPECT_TRUE(first_b->prefix_cached);
  EXPECT_EQ(first_b->start_pos, 16);
  EXPECT_EQ(first_b->tokens, (std::vector<int32_t>{6, 7}));
  EXPECT_THAT(pipe_->violations(), IsEmpty());
}

// Cancels the request after each possible number of answered steps, with
// the next step already in flight (the scheduler sends it as soon as the
// previous one is answered, so that is the state a cancel meets). The step
// in flight is still answered: when it is the last one, its token ends the
// request with "length" before the cancel is seen.
TEST_F(SchedulerTest, CancellingAtAnyStepFreesEverything) {
  fake_.manual = true;
  options_.max_batch_tokens = 4;
  const RequestSpec spec = Spec("cancel", Prompt(10, 30), 4);
  const int total_steps = 3 + 3;  // prompt chunks 4,4,2 then three decodes
  for (int k = 0; k <= total_steps; ++k) {
    SCOPED_TRACE(absl::StrCat("cancelled after ", k, " steps"));
    Start();
    auto stream = Submit(spec);
    for (int i = 0; i < k; ++i) {
      if (i < total_steps) {
        ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
        ASSERT_TRUE(pipe_->DeliverNext());
      }
    }
    if (k < total_steps) {
      ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
    }
    stream->Cancel();
    // The step in flight at the cancel is still answered; nothing new is sent.
    while (pipe_->WaitHeld(1, absl::Milliseconds(200))) pipe_->DeliverNext();
    const Outcome o = Drain(*stream, absl::Seconds(10));
    ASSERT_TRUE(o.ended);
    EXPECT_EQ(static_cast<int>(pipe_->sent().size()), std::min(k + 1, total_steps));
    if (k + 1 < total_steps) {
      EXPECT_EQ(o.status.code(), absl::StatusCode::kCancelled) << o.status;
    } else {
      EXPECT_EQ(o.finish_reason, "length");
    }
    EXPECT_TRUE(Quiescent());
    EXPECT_THAT(pipe_->violations(), IsEmpty());
    scheduler_.reset();
  }
}

TEST_F(SchedulerTest, ACancelledQueuedRequestIsNeverSent) {
  fake_.manual = true;
  options_.max_seqs = 1;
  Start();
  auto running = Submit(Spec("running", Prompt(4, 40), 2));
  ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
  auto queued = Submit(Spec("queued", Prompt(4, 41), 2));
  EXPECT_EQ(scheduler_->stats().queued, 1);
  queued->Cancel();
  while (pipe_->WaitHeld(1, absl::Milliseconds(200))) pipe_->DeliverNext();
  EXPECT_EQ(Drain(*queued).status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Drain(*running).finish_reason, "length");
  for (const StepPlan& p : pipe_->sent()) {
    for (const PlannedSequence& w : p.seqs) EXPECT_NE(w.request_id, "queued");
  }
  EXPECT_TRUE(Quiescent());
}

TEST_F(SchedulerTest, AStepPastItsDeadlineFailsItsRequestsAndNothingElse) {
  fake_.manual = true;
  options_.step_timeout = absl::Milliseconds(100);
  options_.step_timeout_factor = 0;  // the floor alone
  Start();
  auto stuck = Submit(Spec("stuck", Prompt(4, 50), 3));
  const Outcome o = Drain(*stuck, absl::Seconds(10));
  ASSERT_TRUE(o.ended);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(o.status.message(),
              HasSubstr("request stuck: a pipeline step of 4 tokens got no answer within 100ms"));
  EXPECT_EQ(scheduler_->stats().deadline_failures, 1);
  EXPECT_EQ(scheduler_->stats().free_blocks, scheduler_->stats().total_blocks);
  // The late answer is ignored; the next request is served normally.
  ASSERT_TRUE(pipe_->DeliverNext());
  RequestSpec next = Spec("next", Prompt(4, 51), 2);
  auto stream = Submit(next);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
    pipe_->DeliverNext();
  }
  EXPECT_EQ(Drain(*stream).ids, Reference(next));
}

TEST_F(SchedulerTest, AFailedStepFailsOnlyTheRequestsInIt) {
  fake_.manual = true;
  options_.micro_batches = 2;
  Start(2);
  RequestSpec a = Spec("a", Prompt(4, 60), 3);
  RequestSpec b = Spec("b", Prompt(4, 61), 3);
  auto sa = Submit(a);
  auto sb = Submit(b);
  ASSERT_TRUE(pipe_->WaitHeld(2, absl::Seconds(10)));
  ASSERT_EQ(pipe_->sent()[0].seqs.size(), 1u) << "one sequence per micro-batch";
  const std::string failed = pipe_->sent()[0].seqs[0].request_id;
  ASSERT_TRUE(pipe_->FailNext(absl::InternalError("stage 1: boom")));
  while (pipe_->WaitHeld(1, absl::Milliseconds(300))) pipe_->DeliverNext();
  const Outcome oa = Drain(*sa);
  const Outcome ob = Drain(*sb);
  const Outcome& bad = failed == "a" ? oa : ob;
  const Outcome& good = failed == "a" ? ob : oa;
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(bad.status.message(), HasSubstr("request " + failed + ": stage 1: boom"));
  EXPECT_TRUE(good.status.ok()) << good.status;
  EXPECT_EQ(good.ids, Reference(failed == "a" ? b : a));
  EXPECT_TRUE(Quiescent());
}

// A last stage that answers out of contract fails that request with a
// message saying what was wrong; the scheduler keeps serving.
TEST_F(SchedulerTest, ABrokenAnswerFromTheLastStageFailsItsRequestClearly) {
  Start();
  struct Case {
    std::function<void(SampleOutcome*)> edit;
    int32_t top_logprobs;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](SampleOutcome* o) { o->token_id = kVocab + 5; }, 0, absl::StatusCode::kDataLoss,
       "returned token id 305 for sequence"},
      {[](SampleOutcome* o) { o->token_id = -1; }, 0, absl::StatusCode::kDataLoss,
       "outside the vocabulary [0, 300)"},
      {[](SampleOutcome* o) { o->top.pop_back(); }, 3, absl::StatusCode::kDataLoss,
       "returned 2 top logprobs for sequence"},
      {[](SampleOutcome* o) { o->top[0].first = 400; }, 2, absl::StatusCode::kDataLoss,
       "top token id 400"},
      {[](SampleOutcome* o) { o->status = absl::DataLossError("logits hold NaN"); }, 0,
       absl::StatusCode::kDataLoss, "the last stage: logits hold NaN"},
      {[](SampleOutcome* o) { o->seq_id = -7; }, 0, absl::StatusCode::kInternal,
       "the last stage returned no token for sequence"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].message);
    pipe_->OverrideNextSample(cases[i].edit);
    RequestSpec spec = Spec(absl::StrCat("broken-", i), Prompt(3, 70), 4);
    spec.top_logprobs = cases[i].top_logprobs;
    const Outcome o = Drain(*Submit(spec));
    EXPECT_EQ(o.status.code(), cases[i].code) << o.status;
    EXPECT_THAT(o.status.message(), HasSubstr(cases[i].message));
    EXPECT_THAT(o.status.message(), HasSubstr(spec.request_id));
  }
  RequestSpec fine = Spec("fine", Prompt(3, 71), 4);
  EXPECT_EQ(Drain(*Submit(fine)).ids, Reference(fine));
  EXPECT_TRUE(Quiescent());
}

TEST_F(SchedulerTest, LosingThePipelineFailsEveryRequestWithTheReason) {
  fake_.manual = true;
  options_.max_seqs = 1;
  Start();
  auto running = Submit(Spec("running", Prompt(4, 80), 5));
  auto queued = Submit(Spec("queued", Prompt(4, 81), 5));
  ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
  scheduler_->SetPipeline(nullptr, 0, 0, "worker w2 stopped answering heartbeats");
  for (auto* s : {running.get(), queued.get()}) {
    const Outcome o = Drain(*s);
    EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(o.status.message(), HasSubstr("worker w2 stopped answering heartbeats"));
  }
  auto refused = scheduler_->Submit(Spec("late", Prompt(4, 82), 5));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("request late: worker w2 stopped answering heartbeats"));
}

TEST_F(SchedulerTest, AFullQueueRefusesWithResourceExhausted) {
  fake_.manual = true;
  options_.max_seqs = 1;
  options_.max_queue = 2;
  Start();
  auto running = Submit(Spec("running", Prompt(4, 90), 5));
  ASSERT_TRUE(pipe_->WaitHeld(1, absl::Seconds(10)));
  auto q1 = Submit(Spec("q1", Prompt(4, 91), 5));
  auto q2 = Submit(Spec("q2", Prompt(4, 92), 5));
  auto refused = scheduler_->Submit(Spec("q3", Prompt(4, 93), 5));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("request q3: 2 requests are already waiting"));
}

TEST_F(SchedulerTest, AnInvalidRequestIsRefusedNamingTheField) {
  Start();
  RequestSpec spec = Spec("bad", Prompt(4, 94), 5);
  spec.prompt.push_back(kVocab);
  auto r = scheduler_->Submit(spec);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(r.status()), "prompt");
  spec = Spec("long", Prompt(500, 95), 20);
  r = scheduler_->Submit(spec);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("512"));
}

// Random workloads: random prompts sharing prefixes, lengths, budgets, pool
// sizes, micro-batches and cancellations. Every request ends (liveness, incl.
// an old prefill among young decodes under a tight pool), every completed
// one has the reference tokens, every block comes back.
TEST_F(SchedulerTest, RandomWorkloadsEndEveryRequestWithTheReferenceTokens) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 rng(seed);
    auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    fake_ = FakePipelineOptions();
    fake_.vocab = kVocab;
    fake_.eos_id = kEos;
    fake_.eos_every = pick(0, 1) == 1 ? 40 : 0;
    fake_.block_size = pick(1, 3) * 2;
    fake_.latency = absl::Microseconds(pick(0, 500));
    options_ = SchedulerOptions();
    options_.max_context = 96;
    options_.max_seqs = pick(1, 6);
    options_.max_batch_tokens = pick(1, 4) == 1 ? pick(1, 4) : pick(8, 64);
    options_.micro_batches = pick(1, 3);
    // Enough for the longest request alone, often much less than all of them.
    fake_.kv_blocks = 96 / fake_.block_size + pick(1, 24);
    Start(options_.micro_batches);

    std::vector<int32_t> common = Prompt(40, static_cast<int>(seed));
    std::vector<RequestSpec> specs;
    std::vector<std::shared_ptr<RequestStream>> streams;
    std::vector<bool> cancel;
    const int n = pick(4, 14);
    for (int i = 0; i < n; ++i) {
      const int shared = pick(0, 3) == 0 ? 0 : pick(1, 40);
      std::vector<int32_t> prompt(common.begin(), common.begin() + shared);
      const int own = pick(1, 30);
      for (int j = 0; j < own; ++j) prompt.push_back(pick(0, kVocab - 2));
      RequestSpec spec = Spec(absl::StrCat("s", seed, "-", i), prompt,
                              pick(1, 96 - static_cast<int>(prompt.size())), seed * 100 + i);
      spec.top_logprobs = pick(0, 5) == 0 ? pick(1, 3) : 0;
      spec.ignore_eos = pick(0, 3) == 0;
      specs.push_back(spec);
      cancel.push_back(pick(0, 5) == 0);
      streams.push_back(Submit(spec));
      if (pick(0, 2) == 0) absl::SleepFor(absl::Microseconds(pick(0, 2000)));
    }
    for (int i = 0; i < n; ++i) {
      if (cancel[i]) {
        absl::SleepFor(absl::Microseconds(pick(0, 3000)));
        streams[i]->Cancel();
      }
    }
    for (int i = 0; i < n; ++i) {
      const Outcome o = Drain(*streams[i]);
      ASSERT_TRUE(o.ended) << specs[i].request_id << " never ended: "
                           << scheduler_->stats().running << " running, "
                           << scheduler_->stats().queued << " queued";
      const std::vector<int32_t> want = Reference(specs[i]);
      if (o.status.code() == absl::StatusCode::kCancelled) {
        EXPECT_TRUE(cancel[i]) << specs[i].request_id;
        // What came before the cancel is a prefix of the reference.
        ASSERT_LE(o.ids.size(), want.size());
        EXPECT_EQ(o.ids, std::vector<int32_t>(want.begin(), want.begin() + o.ids.size()));
      } else {
        EXPECT_TRUE(o.status.ok()) << o.status;
        EXPECT_EQ(o.ids, want) << specs[i].request_id;
      }
    }
    EXPECT_TRUE(Quiescent());
    EXPECT_THAT(pipe_->violations(), IsEmpty());
    scheduler_.reset();
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace tessera::testing
