// Requests over the replicas of one model: one Scheduler per replica (a
// pipeline with its own KV pool), a place chosen for each new request, and
// the sequences of a failed replica moved to the others.
//
// Placement (RouterOptions::placement):
// - kCacheAware (default): the replica that was sent the longest leading
//   run of this prompt's KV blocks before (so its prefix cache likely holds
//   them; the router remembers, per chain of full blocks, where it sent the
//   last prompt that began so, like SGLang's approximate radix tree), unless
//   that replica is clearly busier than the least loaded one (more than
//   max(4, half the least load) extra outstanding sequences); then, and for
//   a prompt no replica has seen, the least loaded one.
// - kLeastLoaded: the serving replica with the least outstanding work
//   (running plus queued sequences).
// - kRoundRobin: the next serving replica in turn (for comparison).
// Ties go to the lower slot. A replica that has just become ready ramps up:
// for `ramp_up` its load counts max_seqs more, shrinking to nothing, so it
// takes a growing share rather than every new request at once.
//
// Failover: a replica fails when membership loses one of its workers
// (ReplicaLost) or when its scheduler sees a whole step fail for a reason of
// the pipeline's: the pipeline broke, or a step got no answer within the
// step timeout (a hung worker). Either way its unfinished sequences are
// evacuated and adopted by the other serving replicas, least loaded first:
// each is computed again there from its prompt and the tokens it already
// produced, and samples its next token from the same rng counter, so the
// client's stream goes on with no token lost, repeated or changed
// (replicas of one coordinator share the model, the plan's shape and the
// kernel path). With no serving replica left they end UNAVAILABLE naming the
// failure. A fault the scheduler found is also handed to `on_fault` so
// membership rebuilds the replica with a new epoch.
//
// Thread-safety: every method may be called from any thread. Failover runs
// on the thread that reports the failure, one at a time (failover_mu_).
#ifndef TESSERA_COORDINATOR_ROUTER_H_
#define TESSERA_COORDINATOR_ROUTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/model_config.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/scheduler.h"

namespace tessera {

enum class Placement { kCacheAware, kLeastLoaded, kRoundRobin };

// "cache", "load" or "round-robin"; INVALID_ARGUMENT naming the value.
absl::StatusOr<Placement> ParsePlacement(absl::string_view name);

struct RouterOptions {
  Placement placement = Placement::kCacheAware;
  absl::Duration ramp_up = absl::Seconds(10);
};

class Router {
 public:
  // `tokenizer` must outlive the router. `options` is every replica's
  // scheduler's (on_fault is the router's own).
  Router(const Tokenizer* tokenizer, const ModelConfig& config, SchedulerOptions options,
         RouterOptions router_options = RouterOptions());
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Called with the replica's slot, the epoch it was ready with, and the
  // reason when its scheduler found it failed; set before any replica is
  // ready.
  void set_on_fault(
      std::function<void(int slot, uint64_t epoch, const std::string& reason)> on_fault);

  // Checks and queues the request on the least loaded serving replica.
  // UNAVAILABLE naming why when none serves (`not_serving` says why).
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(RequestSpec spec);

  // Replica `slot` (small integers from 0) has a ready pipeline, formed as
  // `epoch`.
  void ReplicaReady(int slot, uint64_t epoch, std::unique_ptr<StepSink> sink, int64_t kv_blocks,
                    int stages);
  // Replica `slot` lost a worker: its sequences move (or end) now.
  void ReplicaLost(int slot, const std::string& reason);

  // Refuses every new request from now on (UNAVAILABLE with `reason`) and
  // waits up to `timeout` for the running ones to end; true if they did.
  bool Drain(const std::string& reason, absl::Duration timeout);
  // Replica `slot` takes no new requests (until it is ready again); waits up
  // to `timeout` for the ones it runs to end; true if they did.
  bool DrainReplica(int slot, const std::string& reason, absl::Duration timeout);

  bool serving() const;
  int slots() const;
  // Whether replica `slot` serves.
  bool replica_serving(int slot) const;
  // Summed over the replicas.
  SchedulerStats stats() const;
  // Of replica `slot` alone (zeros for a slot never used), and its state:
  // Scheduler::state().
  SchedulerStats replica_stats(int slot) const;
  const char* replica_state(int slot) const;
  // Of the first serving replica; empty when none serves.
  PipelineTiming pipeline_timing() const;
  // Sequences moved to another replica, and ended for want of one.
  int64_t migrations() const;
  int64_t stranded() const;

 private:
  // The scheduler of `slot`, created on first use.
  Scheduler* At(int slot) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Scheduler*> All() const ABSL_LOCKS_EXCLUDED(mu_);
  // The replica for a new request with `prompt`; nullptr when none serves.
  Scheduler* Place(const std::vector<int32_t>& prompt) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves the unfinished sequences of `slot` to the other serving replicas.
  void FailOver(int slot, const std::string& reason) ABSL_LOCKS_EXCLUDED(failover_mu_);

  const Tokenizer* tokenizer_;
  const ModelConfig config_;
  const SchedulerOptions options_;
  const RouterOptions router_options_;

  mutable absl::Mutex mu_;
  // Never shrinks, so a Scheduler* stays valid while the router lives.
  std::vector<std::unique_ptr<Scheduler>> schedulers_ ABSL_GUARDED_BY(mu_);
  std::function<void(int, uint64_t, const std::string&)> on_fault_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> epochs_ ABSL_GUARDED_BY(mu_);  // by slot, as last ready
  std::vector<absl::Time> ready_since_ ABSL_GUARDED_BY(mu_);  // by slot
  // Chain hash of a prompt's first n full blocks -> the slot the last such
  // prompt went to. Cleared when it grows past a bound.
  absl::flat_hash_map<uint64_t, int> routed_ ABSL_GUARDED_BY(mu_);
  int next_turn_ ABSL_GUARDED_BY(mu_) = 0;  // round-robin
  int64_t migrations_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t stranded_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_failure_ ABSL_GUARDED_BY(mu_);
  std::string draining_ ABSL_GUARDED_BY(mu_);  // why new requests are refused; "" = not

  absl::Mutex failover_mu_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ROUTER_H_
