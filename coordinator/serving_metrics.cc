#include "coordinator/serving_metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace {

using prometheus::Histogram;

// Seconds: from a millisecond (a CPU decode step) to minutes (a long
// generation behind a queue).
const Histogram::BucketBoundaries kLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0,   2.5,    5.0,   7.5,  10,   20,   40,   80,   160,  320,  640};
const Histogram::BucketBoundaries kTokenLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3,    0.4,   0.5,    0.75,  1.0,  2.5,   5.0,  7.5,   10,  20,   40};
const Histogram::BucketBoundaries kStepBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10};
const Histogram::BucketBoundaries kTokenCountBuckets = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kUnauthenticated: return "unauthenticated";
    case RejectReason::kInvalid: return "invalid";
    case RejectReason::kRateLimited: return "rate_limited";
    case RejectReason::kQueueFull: return "queue_full";
    case RejectReason::kOverloaded: return "overloaded";
    case RejectReason::kUnavailable: return "unavailable";
  }
  return "unknown";
}

ServingMetrics::ServingMetrics(const std::string& model_name)
    : registry_(std::make_shared<prometheus::Registry>()), model_{{"model_name", model_name}} {
  auto& r = *registry_;
  auto counter = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Counter>& {
    return prometheus::BuildCounter().Name(name).Help(help).Labels(model_).Register(r);
  };
  auto histogram = [&](const char* name,
                       const char* help) -> prometheus::Family<prometheus::Histogram>& {
    return prometheus::BuildHistogram().Name(name).Help(help).Labels(model_).Register(r);
  };
  rejected_ = &counter("tessera_requests_rejected_total",
                       "Requests refused before they ran, by reason.");
  finished_ = &counter("tessera_requests_finished_total",
                       "Requests that ended, by finish_reason: stop, length, abort (the client "
                       "left) or error.");
  // Every reason is present from the start, so rate() has a series to see.
  for (RejectReason reason :
       {RejectReason::kUnauthenticated, RejectReason::kInvalid, RejectReason::kRateLimited,
        RejectReason::kQueueFull, RejectReason::kOverloaded, RejectReason::kUnavailable}) {
    rejected_->Add({{"reason", RejectReasonName(reason)}});
  }
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    finished_->Add({{"finish_reason", reason}});
  }
  prompt_tokens_ = &counter("tessera_prompt_tokens_total",
                            "Prompt tokens of the requests that ended.").Add({});
  generation_tokens_ = &counter("tessera_generation_tokens_total",
                                "Tokens generated for the requests that ended.").Add({});
  e2e_ = &histogram("tessera_e2e_request_latency_seconds",
                    "Seconds from admission to the end of a request.")
              .Add({}, kLatencyBuckets);
  queue_ = &histogram("tessera_request_queue_time_seconds",
                      "Seconds a request waited before a replica first admitted it.")
                .Add({}, kLatencyBuckets);
  ttft_ = &histogram("tessera_time_to_first_token_seconds",
                     "Seconds from a request's arrival at the scheduler to its first token.")
               .Add({}, kLatencyBuckets);
  itl_ = &histogram("tessera_inter_token_latency_seconds",
                    "Seconds between two tokens of one request.")
              .Add({}, kTokenLatencyBuckets);
  request_prompt_tokens_ = &histogram("tessera_request_prompt_tokens",
                                      "Prompt tokens per request that ended.")
                                .Add({}, kTokenCountBuckets);
  request_generation_tokens_ = &histogram("tessera_request_generation_tokens",
                                          "Generated tokens per request that ended.")
                                    .Add({}, kTokenCountBuckets);
  prefix_queries_ = &counter("tessera_prefix_cache_queries_total",
                             "Prompt tokens looked up in the prefix cache (whole KV blocks "
                             "before the last token).")
                         .Add({});
  prefix_hits_ = &counter("tessera_prefix_cache_hits_total",
                          "Prompt tokens whose KV was reused from the prefix cache.")
                      .Add({});
  preemptions_ = &counter("tessera_preemptions_total",
                          "Running requests preempted (their KV dropped) to free blocks.")
                      .Add({});
  round_trip_ = &histogram("tessera_step_round_trip_seconds",
                           "Seconds from sending a step to stage 0 to its result, per replica.");
  result_bytes_ = &counter("tessera_step_result_bytes_total",
                           "Bytes of step results received from the last stage, per replica.");
  stage_seconds_ = &histogram("tessera_stage_step_seconds",
                              "Seconds a stage spent on a step (as it reports), per replica "
                              "and stage.");
  link_bytes_ = &counter("tessera_stage_link_bytes_total",
                         "Bytes a stage received for its steps from upstream (the coordinator "
                         "for stage 0), per replica and stage.");
  link_messages_ = &counter("tessera_stage_link_messages_total",
                            "Steps a stage received from upstream, per replica and stage.");
  migrations_ = &counter("tessera_migrations_total",
                         "Requests moved to another replica after theirs failed.")
                     .Add({});
  hangs_ = &counter("tessera_hang_detections_total",
                    "Steps presumed stuck (no answer within the step deadline).")
               .Add({});
  joins_ = &counter("tessera_worker_joins_total", "Workers that joined the cluster.").Add({});
  losses_ = &counter("tessera_worker_losses_total",
                     "Workers that left, timed out or were removed.")
                .Add({});
}

void ServingMetrics::Rejected(RejectReason reason) {
  rejected_->Add({{"reason", RejectReasonName(reason)}}).Increment();
}

void ServingMetrics::Finished(const StreamOutcome& outcome, absl::Duration e2e) {
  const char* reason = outcome.status.ok()
                           ? (outcome.finish_reason == "length" ? "length" : "stop")
                           : (absl::IsCancelled(outcome.status) ? "abort" : "error");
  finished_->Add({{"finish_reason", reason}}).Increment();
  prompt_tokens_->Increment(static_cast<double>(outcome.prompt_tokens));
  generation_tokens_->Increment(static_cast<double>(outcome.completion_tokens));
  e2e_->Observe(Seconds(e2e));
  request_prompt_tokens_->Observe(static_cast<double>(outcome.prompt_tokens));
  request_generation_tokens_->Observe(static_cast<double>(outcome.completion_tokens));
}

void ServingMetrics::Scheduled(absl::Duration queue_time) { queue_->Observe(Seconds(queue_time)); }

void ServingMetrics::FirstToken(absl::Duration since_arrival) {
  ttft_->Observe(Seconds(since_arrival));
}

void ServingMetrics::NextToken(absl::Duration since_previous) {
  itl_->Observe(Seconds(since_previous));
}

void ServingMetrics::PrefixLookup(int64_t query_tokens, int64_t hit_tokens) {
  prefix_queries_->Increment(static_cast<double>(query_tokens));
  prefix_hits_->Increment(static_cast<double>(hit_tokens));
}

void ServingMetrics::Preempted() { preemptions_->Increment(); }

ServingMetrics::Stage& ServingMetrics::StageFor(int replica, int stage) {
  absl::MutexLock lock(&mu_);
  Stage& s = stages_[{replica, stage}];
  if (s.seconds == nullptr) {
    const prometheus::Labels labels{{"replica", absl::StrCat(replica)},
                                    {"stage", absl::StrCat(stage)}};
    s.seconds = &stage_seconds_->Add(labels, kStepBuckets);
    s.bytes = &link_bytes_->Add(labels);
    s.messages = &link_messages_->Add(labels);
  }
  return s;
}

void ServingMetrics::StepAnswered(int replica, absl::Duration round_trip, int64_t result_bytes) {
  const prometheus::Labels labels{{"replica", absl::StrCat(replica)}};
  round_trip_->Add(labels, kStepBuckets).Observe(Seconds(round_trip));
  result_bytes_->Add(labels).Increment(static_cast<double>(result_bytes));
}

void ServingMetrics::StageStep(int replica, int stage, int64_t compute_micros, int64_t bytes_in) {
  const double seconds = static_cast<double>(compute_micros) * 1e-6;
  Stage& s = StageFor(replica, stage);
  s.seconds->Observe(seconds);
  s.bytes->Increment(static_cast<double>(bytes_in));
  s.messages->Increment();
  absl::MutexLock lock(&mu_);
  if (s.window.size() < kWindow) {
    s.window.push_back(seconds);
  } else {
    s.window[s.next] = seconds;
  }
  s.next = (s.next + 1) % kWindow;
}

ServingMetrics::StepWindow ServingMetrics::StageWindow(int replica, int stage) const {
  std::vector<double> w;
  {
    absl::MutexLock lock(&mu_);
    const auto it = stages_.find({replica, stage});
    if (it == stages_.end() || it->second.window.empty()) return StepWindow();
    w = it->second.window;
  }
  std::sort(w.begin(), w.end());
  // Nearest rank: the smallest value with at least q of the window at or
  // below it.
  auto rank = [&](double q) {
    const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(w.size())));
    return w[std::min(w.size(), std::max<size_t>(i, 1)) - 1];
  };
  return StepWindow{rank(0.5), rank(0.99), w.size()};
}

uint64_t ServingMetrics::requests_finished() const {
  double n = 0;
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    n += finished_->Add({{"finish_reason", reason}}).Value();
  }
  return static_cast<uint64_t>(n);
}

uint64_t ServingMetrics::generated_tokens() const {
  return static_cast<uint64_t>(generation_tokens_->Value());
}

uint64_t ServingMetrics::migrations() const { return static_cast<uint64_t>(migrations_->Value()); }

void ServingMetrics::Migrated(int64_t requests) {
  migrations_->Increment(static_cast<double>(requests));
}
void ServingMetrics::HangDetected() { hangs_->Increment(); }
void ServingMetrics::WorkerJoined() { joins_->Increment(); }
void ServingMetrics::WorkerLost() { losses_->Increment(); }

}  // namespace tessera
