// A StepSink for scheduler tests that behaves like a pipeline holding KV: it
// keeps, per sequence, the tokens whose KV it "computed", writes each
// position into the block the step's table names, and on every later step
// checks that the blocks still hold what the sequence wrote there. The token
// it "samples" is a hash of the sequence's whole history, the seed and the
// rng counter, so a request's tokens equal ReferenceTokens(prompt) exactly
// when the scheduler fed the sequence its true history, in order, whatever
// the batching, chunking, preemption or prefix reuse. Every broken rule
// (a sequence in two steps at once, a start position that skips or repeats
// tokens, a short or duplicated block table, a block overwritten under a
// live sequence, a step over the token budget) is recorded as a violation.
//
// Results are delivered by a thread after `latency`, in send order (as a
// real pipeline answers), or held until the test calls DeliverNext / Fail
// when `manual` is set.
//
// Thread-safety: every method may be called from any thread.
#ifndef TESSERA_TESTS_COORDINATOR_FAKE_PIPELINE_H_
#define TESSERA_TESTS_COORDINATOR_FAKE_PIPELINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/step_sink.h"

namespace tessera::testing {

struct FakePipelineOptions {
  int64_t kv_blocks = 64;
  int32_t block_size = 4;
  int32_t vocab = 300;
  int32_t eos_id = -1;         // sampled when the history hash % eos_every == 0
  int32_t eos_every = 0;       // 0: never
  int32_t max_batch_tokens = 0;  // > 0: a step carrying more is a violation
  absl::Duration latency = absl::Milliseconds(1);
  bool manual = false;
  // > 0: after this many answered steps the pipeline fails, as a replica
  // whose worker died (every later step is answered UNAVAILABLE) or, with
  // `hang`, as one whose worker froze (no later step is answered).
  int64_t fail_after_steps = 0;
  bool hang = false;
};

// The tokens a request with this prompt gets from the fake alone: what the
// scheduler must reproduce however it schedules.
std::vector<int32_t> ReferenceTokens(const FakePipelineOptions& options,
                                     const std::vector<int32_t>& prompt, uint64_t seed,
                                     int32_t max_tokens, bool ignore_eos);

class FakePipeline final : public StepSink {
 public:
  explicit FakePipeline(FakePipelineOptions options);
  ~FakePipeline() override;

  void Send(StepPlan plan, Done done) override;
  void Release(const std::vector<int64_t>& seq_ids) override;
  PipelineTiming timing() const override;

  // Manual mode: answers the oldest held step (false if none is held).
  bool DeliverNext();
  // Manual mode: fails the oldest held step with `status`.
  bool FailNext(const absl::Status& status);
  // Manual mode: waits until at least `n` steps are held.
  bool WaitHeld(size_t n, absl::Duration timeout);
  size_t held() const;

  // Makes the answer for `seq_id`'s next sample this one instead.
  void OverrideNextSample(std::function<void(SampleOutcome*)> edit);

  std::vector<std::string> violations() const;
  std::vector<StepPlan> sent() const;  // every plan, in send order
  // Sequences the stages hold now (not yet released).
  size_t live_sequences() const;

 private:
  struct Position {
    int64_t seq_id = 0;  // 0: never written
    int32_t token = 0;
    uint64_t hash = 0;
  };
  struct SeqState {
    std::vector<int32_t> tokens;
    std::vector<uint64_t> hashes;  // hashes[p]: of tokens [0, p]
  };
  struct Held {
    StepPlan plan;
    StepOutcome outcome;
    Done done;
    absl::Time due;
  };

  // Runs the plan against the fake KV; the outcome as the last stage sends it.
  StepOutcome Compute(const StepPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverLoop();

  const FakePipelineOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Position> kv_ ABSL_GUARDED_BY(mu_);  // kv_blocks * block_size
  absl::flat_hash_map<int64_t, SeqState> seqs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<int64_t> released_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<int64_t> in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::vector<StepPlan> sent_ ABSL_GUARDED_BY(mu_);
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::function<void(SampleOutcome*)>> overrides_ ABSL_GUARDED_BY(mu_);
  PipelineTiming timing_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_COORDINATOR_FAKE_PIPELINE_H_
