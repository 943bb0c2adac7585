// A worker's Prometheus metrics, on --metrics-listen: the steps it ran and
// how long they took (a histogram the Steps handler feeds), and, read from
// WorkerState when Prometheus scrapes, its counters (tokens, bytes in and
// out, results), what it serves (stage, KV pool, live sequences, weights,
// device) and whether it is inside a step. GPU telemetry is separate
// (common/metrics/gpu_telemetry.h). docs/operations.md lists them.
//
// A scrape never waits for a step: WorkerState's lock is held for a whole
// step, so the collector only tries it, and reports what it read at the last
// scrape that got it when a step is running.
//
// Thread-safety: StepRan from the Steps handlers; Collect from the
// exposer's threads. `state` must outlive the metrics.
#ifndef TESSERA_WORKER_WORKER_METRICS_H_
#define TESSERA_WORKER_WORKER_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "worker/stage_service.h"

namespace tessera {

class WorkerMetrics {
 public:
  // `device` names what computes the stage ("cpu", "cuda:0,1"), for
  // tessera_worker_info.
  WorkerMetrics(WorkerState* state, std::string device);

  // One step through the stage's runner: `seconds` of compute.
  void StepRan(double seconds);

  // The registry and the scrape-time collector, for MetricsServer.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

 private:
  struct Served {
    int stage = -1;
    int64_t live_sequences = 0;
    int64_t kv_blocks = 0;
    uint64_t kv_bytes = 0;
    uint64_t weight_bytes = 0;
    std::string worker_id;
  };
  std::vector<prometheus::MetricFamily> Collect() const;

  WorkerState* const state_;
  const std::string device_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* step_seconds_;
  std::shared_ptr<prometheus::Collectable> collector_;
  mutable absl::Mutex mu_;
  mutable Served last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_WORKER_WORKER_METRICS_H_
