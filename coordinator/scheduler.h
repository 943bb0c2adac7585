// The coordinator's scheduler: turns admitted requests into pipeline steps.
//
// Continuous batching with micro-batches: the running sequences are spread
// over up to `micro_batches` steps in flight at once (by default one per
// stage), so that while stage 1 works on one micro-batch stage 0 already
// works on the next. A sequence is in at most one step at a time, since its
// next token depends on the last. Within a step, decodes go first and prompt
// chunks fill the rest of max_batch_tokens (chunked prefill). Because every
// kernel is batch-invariant and sampling is counter-based, each request's
// tokens are bitwise what it would get alone in `tessera run`, however it is
// batched, chunked or preempted.
//
// Prefix caching: a request whose prompt starts with full blocks some
// earlier sequence computed reuses them (kv_block_pool.h) and only computes
// the rest.
//
// KV: block tables are owned here and grow a block at a time as sequences
// advance. When a sequence needs a block and none is free, the youngest idle
// sequence is preempted: its blocks are freed, the workers told to forget
// it, and it goes back to the front of the queue to be recomputed (prompt
// plus the tokens it already produced) when blocks free up. While an older
// sequence waits for blocks, younger ones may not take new blocks, so the
// blocks that free up go to it (without this, young decodes could take each
// freed block first and starve an old prefill). A request is delayed, never
// failed, for lack of blocks. A finished or cancelled sequence frees its
// blocks as soon as no step of it is in flight.
//
// The scheduler works in plain types (step_plan.h) and sends steps to a
// StepSink (the gRPC pipeline client, or a fake in tests). It decides only
// what affects scheduling: end-of-generation and stop ids, max_tokens,
// errors. Detokenizing, stop strings and logprob text happen on the front
// end's thread when it takes events (request_stream.h), not under this lock.
//
// Thread-safety: public methods may be called from any thread; one internal
// thread builds and sends the steps, and the sink posts results back to it.
#ifndef TESSERA_COORDINATOR_SCHEDULER_H_
#define TESSERA_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/model_config.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/kv_block_pool.h"
#include "coordinator/request_spec.h"
#include "coordinator/request_stream.h"
#include "coordinator/sequence.h"
#include "coordinator/serving_metrics.h"
#include "coordinator/step_deadline.h"
#include "coordinator/step_plan.h"
#include "coordinator/step_sink.h"

namespace tessera {

struct SchedulerOptions {
  int64_t max_context = 4096;      // prompt + generated tokens per sequence
  int64_t max_seqs = 8;            // sequences running at once
  int32_t max_batch_tokens = 512;  // tokens per step (prefill chunks + decodes)
  int32_t block_size = 16;
  int64_t max_queue = 256;         // requests waiting for admission
  // Steps in flight at once; 0 = one per pipeline stage.
  int32_t micro_batches = 0;
  // A step unanswered for max(step_timeout, step_timeout_factor × its
  // expected time) presumes the pipeline stuck (step_deadline.h); factor 0:
  // step_timeout alone.
  absl::Duration step_timeout = absl::Seconds(5);
  double step_timeout_factor = 8;
  // Set when the scheduler runs one replica of several (router.h): a step
  // that fails as a whole for a reason of the pipeline's (UNAVAILABLE,
  // ABORTED, or no answer within step_timeout) ends no request. The
  // scheduler stops sending, keeps its sequences, and calls on_fault once
  // with the reason (from its own thread, no lock held); the router then
  // takes the sequences away with Evacuate. Unset: those requests fail with
  // the step's error.
  std::function<void(const std::string& reason)> on_fault;
  // How many times a request may be moved to another replica.
  int32_t max_migrations = 3;
  // Latency, prefix-cache, preemption and hang metrics; null: none. Must
  // outlive the scheduler.
  ServingMetrics* metrics = nullptr;
};

// What the scheduler is doing, for GetModelInfo and tests.
struct SchedulerStats {
  int64_t running = 0;
  int64_t queued = 0;
  int64_t steps_in_flight = 0;
  int64_t total_blocks = 0;
  int64_t free_blocks = 0;
  int64_t preemptions = 0;    // since start
  int64_t steps = 0;          // answered steps since start
  int64_t prefill_tokens = 0; // tokens sent that were not decodes (incl. recompute)
  int64_t cached_blocks = 0;     // blocks registered in the prefix cache
  int64_t prefix_hit_blocks = 0; // blocks reused from it instead of computed
  int64_t prefill_chunks = 0;    // sequence chunks of more than one token sent
  int64_t max_step_tokens = 0;   // the most tokens one step has carried
  int64_t max_steps_in_flight = 0;  // the most steps in flight at once
  int64_t deadline_failures = 0;    // steps failed for taking longer than step_timeout
};

class Scheduler {
 public:
  // `tokenizer` must outlive the scheduler.
  Scheduler(const Tokenizer* tokenizer, const ModelConfig& config, SchedulerOptions options);
  ~Scheduler();

  // Checks the request (INVALID_ARGUMENT naming the field or both numbers of
  // a context overflow) and queues it. UNAVAILABLE when no pipeline is ready
  // (with the reason), RESOURCE_EXHAUSTED when the queue is full.
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(RequestSpec spec);

  // Installs a ready pipeline of `stages` stages with `kv_blocks` blocks per
  // stage, or removes it (sink == nullptr): running requests then fail
  // UNAVAILABLE with `reason`.
  void SetPipeline(std::unique_ptr<StepSink> sink, int64_t kv_blocks, int stages,
                   const std::string& reason);

  // A replica's scheduler (SchedulerOptions::on_fault set) ---------------

  // True while a pipeline is installed and has not failed: new requests and
  // moved sequences may come here.
  bool serving() const;
  // "serving", "draining" (takes no new requests), "faulted" (its pipeline
  // failed; sequences being moved) or "down" (no pipeline).
  const char* state() const;

  // Removes the pipeline (destroyed outside the lock, its late results
  // ignored) and hands over every unfinished sequence, queued or running,
  // stripped of what the replica held for it, oldest first. New requests
  // are refused UNAVAILABLE with `reason` until SetPipeline installs a new
  // pipeline.
  std::vector<std::unique_ptr<Sequence>> Evacuate(const std::string& reason);

  // Takes over sequences evacuated from another replica: they go to the
  // front of the queue in arrival order and are computed again from
  // position 0. One moved more than max_migrations times ends UNAVAILABLE.
  void Adopt(std::vector<std::unique_ptr<Sequence>> seqs);

  // Takes no new requests or moved sequences from now on (serving() turns
  // false; Submit refuses UNAVAILABLE with `reason`) until SetPipeline
  // installs a pipeline; the sequences it has run to their end.
  void StopTaking(const std::string& reason);
  // Unfinished sequences, running or queued.
  int64_t outstanding() const;

  // Ends a sequence no scheduler will run (no replica left to take it).
  static void Abandon(Sequence* s, const absl::Status& status);

  SchedulerStats stats() const;
  // Step timing of the current pipeline; empty when there is none.
  PipelineTiming pipeline_timing() const;

 private:
  struct InFlight {
    uint64_t generation = 0;
    absl::Time sent;
    absl::Duration timeout;  // sent + timeout = its deadline
    int64_t tokens = 0;
    std::vector<std::pair<Sequence*, int32_t>> work;  // sequence, tokens sent
  };
  struct Completion {
    uint64_t generation = 0;
    uint64_t ticket = 0;
    absl::StatusOr<StepOutcome> result;
  };

  void Loop();
  // Moves queued requests into running while slots and blocks allow.
  void Admit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the next step from idle sequences; false when there is none.
  bool BuildStep(StepPlan* plan, InFlight* step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives `s` blocks for its first `positions` positions, preempting younger
  // idle sequences if needed; false if that is not possible now.
  bool EnsureBlocks(Sequence* s, int64_t positions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Preempt(Sequence* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Complete(Completion c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a sequence: final event, blocks freed, release queued. The caller
  // makes sure no step of it is in flight.
  void Finish(Sequence* s, const absl::Status& status, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies one sampled token from the last stage; true if the sequence is
  // done. A top-N list that is not what was asked for fails the request.
  bool Accept(Sequence* s, const SampleOutcome& token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pushes the final event of `s`'s stream.
  static void PushEnd(Sequence* s, const absl::Status& status, const std::string& reason);
  // Drops finished sequences from running_.
  void Sweep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the steps in flight on the pipeline (their late results are
  // ignored by generation) and returns it, to be destroyed outside the lock.
  std::shared_ptr<StepSink> DropPipeline() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a step failing with `status` is the replica's fault (handed to
  // on_fault) rather than its requests'.
  bool IsReplicaFault(const absl::Status& status) const;
  // Records the first fault; the loop reports it.
  void Fault(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Tokenizer* tokenizer_;
  const ModelConfig config_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::shared_ptr<StepSink> pipeline_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by SetPipeline and Evacuate
  // The pipeline failed (on_fault set): nothing is sent until Evacuate or
  // SetPipeline. `fault_to_report_` is handed to on_fault by the loop.
  bool faulted_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // StopTaking
  std::string fault_to_report_ ABSL_GUARDED_BY(mu_);
  int micro_batches_ ABSL_GUARDED_BY(mu_) = 1;
  StepDeadlines deadlines_ ABSL_GUARDED_BY(mu_);
  std::string unavailable_reason_ ABSL_GUARDED_BY(mu_) = "no pipeline is ready yet";
  KvBlockPool blocks_ ABSL_GUARDED_BY(mu_);
  std::deque<std::unique_ptr<Sequence>> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Sequence>> running_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> releases_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  // The counters of SchedulerStats (preemptions, steps, prefill tokens and
  // chunks, the maxima, deadline failures), counted in place; stats() adds
  // the live fields.
  SchedulerStats counted_ ABSL_GUARDED_BY(mu_);
  // The arrival of the oldest running sequence that could not get blocks
  // for its next chunk (0: none is waiting). Younger sequences take no new
  // blocks until it has them.
  uint64_t blocked_arrival_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by everything that can make a stalled scheduler productive
  // (a submission, a result, a new pipeline); the loop sleeps while it
  // equals stalled_at_, the value when it last found nothing to send.
  uint64_t events_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t stalled_at_ ABSL_GUARDED_BY(mu_) = ~uint64_t{0};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_SCHEDULER_H_
