// The coordinator's request and pipeline metrics, kept as Prometheus
// counters and histograms (prometheus-cpp) that the serving code updates as
// things happen. State read at scrape time (queues, KV use, heartbeats,
// replica states) is cluster_metrics.h. docs/operations.md lists every
// metric with its meaning and its vLLM name where vLLM has one.
//
// Labels are bounded: model_name (one per coordinator), finish_reason,
// reject reason, replica slot and stage index. Never a request id.
//
// The hooks are cheap (an atomic add, or a histogram observation under the
// histogram's own mutex) and take no lock of their callers: the scheduler
// calls some of them under its own lock.
//
// Thread-safety: every method may be called from any thread.
#ifndef TESSERA_COORDINATOR_SERVING_METRICS_H_
#define TESSERA_COORDINATOR_SERVING_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/request_stream.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace tessera {

// Why a request was refused before it ran.
enum class RejectReason {
  kUnauthenticated,  // no or a wrong API key
  kInvalid,          // a malformed request or a bad parameter
  kRateLimited,      // its key's requests, tokens or streams per minute
  kQueueFull,        // --max-queue requests already waiting
  kOverloaded,       // --http-max-streams open HTTP requests
  kUnavailable,      // no replica ready, or draining
};
const char* RejectReasonName(RejectReason reason);

class ServingMetrics {
 public:
  explicit ServingMetrics(const std::string& model_name);

  // What a scrape collects.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Admission.
  void Rejected(RejectReason reason);
  // A request ended (once): finish_reason "stop" or "length" when OK,
  // "abort" when CANCELLED (the client left), "error" otherwise; `e2e` from
  // admission to its end.
  void Finished(const StreamOutcome& outcome, absl::Duration e2e);

  // The scheduler.
  void Scheduled(absl::Duration queue_time);    // first admission to a replica
  void FirstToken(absl::Duration since_arrival);
  void NextToken(absl::Duration since_previous);
  // A prefix-cache lookup: `query_tokens` that could have been reused,
  // `hit_tokens` that were.
  void PrefixLookup(int64_t query_tokens, int64_t hit_tokens);
  void Preempted();

  // The pipeline: one answered step of replica `replica`, its round trip,
  // and what each stage reported (compute time, bytes it received).
  void StepAnswered(int replica, absl::Duration round_trip, int64_t result_bytes);
  void StageStep(int replica, int stage, int64_t compute_micros, int64_t bytes_in);

  // The cluster.
  void Migrated(int64_t requests);
  void HangDetected();
  void WorkerJoined();
  void WorkerLost();

  // For `tessera status`: a stage's step time over its last kWindow steps
  // (zeros before the first), and totals since start.
  static constexpr size_t kWindow = 256;
  struct StepWindow {
    double p50_seconds = 0;
    double p99_seconds = 0;
    uint64_t steps = 0;  // in the window
  };
  StepWindow StageWindow(int replica, int stage) const;
  uint64_t requests_finished() const;
  uint64_t generated_tokens() const;
  uint64_t migrations() const;

 private:
  struct Stage {
    prometheus::Histogram* seconds = nullptr;
    prometheus::Counter* bytes = nullptr;
    prometheus::Counter* messages = nullptr;
    std::vector<double> window;  // the last kWindow step times, a ring
    size_t next = 0;
  };
  Stage& StageFor(int replica, int stage);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Labels model_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* request_prompt_tokens_;
  prometheus::Histogram* request_generation_tokens_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Counter* preemptions_;
  prometheus::Family<prometheus::Histogram>* round_trip_;
  prometheus::Family<prometheus::Counter>* result_bytes_;
  prometheus::Family<prometheus::Histogram>* stage_seconds_;
  prometheus::Family<prometheus::Counter>* link_bytes_;
  prometheus::Family<prometheus::Counter>* link_messages_;
  prometheus::Counter* migrations_;
  prometheus::Counter* hangs_;
  prometheus::Counter* joins_;
  prometheus::Counter* losses_;

  mutable absl::Mutex mu_;
  std::map<std::pair<int, int>, Stage> stages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_SERVING_METRICS_H_
