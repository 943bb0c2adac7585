#include "worker/worker_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/metrics/build_info.h"
#include "common/metrics/collector.h"

namespace tessera {

WorkerMetrics::WorkerMetrics(WorkerState* state, std::string device)
    : state_(state), device_(std::move(device)), registry_(std::make_shared<prometheus::Registry>()) {
  step_seconds_ = &prometheus::BuildHistogram()
                       .Name("tessera_worker_step_seconds")
                       .Help("Seconds the stage's runner took for a step (forward pass and "
                             "sampling, without decoding the request or sending results).")
                       .Register(*registry_)
                       .Add({}, prometheus::Histogram::BucketBoundaries{
                                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10});
  collector_ = std::make_shared<Collector>([this] { return Collect(); });
}

void WorkerMetrics::StepRan(double seconds) { step_seconds_->Observe(seconds); }

std::vector<std::shared_ptr<prometheus::Collectable>> WorkerMetrics::collectables() const {
  return {registry_, collector_};
}

std::vector<prometheus::MetricFamily> WorkerMetrics::Collect() const {
  // The state's lock is held through a step; never wait for it.
  WorkerState* state = state_;
  Served now;
  {
    absl::MutexLock cache(&mu_);
    if (state->mu.TryLock()) {
      last_.worker_id = state->worker_id;
      last_.stage = state->stage_index;
      if (state->executor != nullptr) {
        last_.live_sequences = state->executor->live_sequences();
        last_.kv_blocks = state->executor->kv_blocks();
        last_.kv_bytes = state->executor->kv_bytes();
        last_.weight_bytes = state->executor->weight_bytes();
      } else {
        last_ = Served{-1, 0, 0, 0, 0, state->worker_id};
      }
      state->mu.Unlock();
    }
    now = last_;
  }
  std::vector<prometheus::MetricFamily> out;
  FamilyBuilder::Gauge("tessera_build_info",
                       "1, labelled with the version and git commit this binary was built from.")
      .Add({{"version", BuildVersion()}, {"commit", BuildCommit()}}, 1)
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_info",
                       "1, labelled with the worker's id in the cluster and its device.")
      .Add({{"worker", now.worker_id}, {"device", device_}}, 1)
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_stage_index",
                       "The pipeline stage this worker serves (-1: none assigned).")
      .Add(now.stage)
      .AppendTo(&out);
  FamilyBuilder::Counter("tessera_worker_steps_total", "Steps the stage answered.")
      .Add(static_cast<double>(state->steps.load()))
      .AppendTo(&out);
  FamilyBuilder::Counter("tessera_worker_tokens_total", "Tokens the stage computed.")
      .Add(static_cast<double>(state->tokens.load()))
      .AppendTo(&out);
  FamilyBuilder::Counter("tessera_worker_received_bytes_total",
                         "Bytes of steps received from upstream.")
      .Add(static_cast<double>(state->bytes_received.load()))
      .AppendTo(&out);
  FamilyBuilder::Counter("tessera_worker_sent_bytes_total",
                         "Bytes of steps forwarded to the next stage.")
      .Add(static_cast<double>(state->bytes_sent.load()))
      .AppendTo(&out);
  FamilyBuilder::Counter("tessera_worker_results_total",
                         "Step results of the last stage: relayed back up the pipeline, or "
                         "sent straight to the coordinator.")
      .Add({{"route", "relayed"}}, static_cast<double>(state->results_relayed.load()))
      .Add({{"route", "direct"}}, static_cast<double>(state->results_direct.load()))
      .AppendTo(&out);
  const int64_t busy = state->busy_since_unix_micros.load();
  FamilyBuilder::Gauge("tessera_worker_step_busy_seconds",
                       "Seconds the current step has run (0: between steps).")
      .Add(busy > 0 ? absl::ToDoubleSeconds(absl::Now() - absl::FromUnixMicros(busy)) : 0.0)
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_live_sequences",
                       "Sequences with KV on this stage.")
      .Add(static_cast<double>(now.live_sequences))
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_kv_capacity_blocks", "KV blocks of the stage's pool.")
      .Add(static_cast<double>(now.kv_blocks))
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_kv_capacity_bytes", "Bytes of the stage's KV pool.")
      .Add(static_cast<double>(now.kv_bytes))
      .AppendTo(&out);
  FamilyBuilder::Gauge("tessera_worker_weight_bytes", "Bytes of weights the stage holds.")
      .Add(static_cast<double>(now.weight_bytes))
      .AppendTo(&out);
  return out;
}

}  // namespace tessera
