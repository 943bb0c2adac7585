#include "coordinator/cluster_status.h"

#include <algorithm>

#include "absl/time/time.h"
#include "common/metrics/build_info.h"

namespace tessera {

v1::ClusterStatus DescribeCluster(const std::string& model, const Router& router,
                                  const Membership& membership, const ServingMetrics* metrics) {
  v1::ClusterStatus status;
  status.set_model(model);
  status.set_version(BuildVersion());
  status.set_commit(BuildCommit());
  const std::vector<WorkerView> workers = membership.Workers();
  status.set_workers(static_cast<int32_t>(workers.size()));
  int slots = router.slots();
  for (const WorkerView& w : workers) slots = std::max(slots, w.replica + 1);
  for (int slot = 0; slot < slots; ++slot) {
    v1::ReplicaStatusLine* r = status.add_replicas();
    const SchedulerStats st = router.replica_stats(slot);
    r->set_replica(slot);
    r->set_state(router.replica_state(slot));
    r->set_running(st.running);
    r->set_waiting(st.queued);
    r->set_kv_blocks_used(st.total_blocks - st.free_blocks);
    r->set_kv_blocks_total(st.total_blocks);
    if (r->state() == "serving") status.set_replicas_serving(status.replicas_serving() + 1);
    status.set_running(status.running() + st.running);
    status.set_waiting(status.waiting() + st.queued);
    status.set_kv_blocks_used(status.kv_blocks_used() + r->kv_blocks_used());
    status.set_kv_blocks_total(status.kv_blocks_total() + st.total_blocks);
  }
  for (const WorkerView& w : workers) {
    v1::WorkerStatusLine line;
    line.set_worker_id(w.id);
    line.set_address(w.address);
    line.set_device(w.device);
    line.set_tensor_parallel(w.tensor_parallel);
    line.set_replica(w.replica);
    line.set_stage(w.stage);
    line.set_layer_begin(w.layer_begin);
    line.set_layer_end(w.layer_end);
    line.set_state(w.state);
    line.set_heartbeat_age_seconds(absl::ToDoubleSeconds(w.heartbeat_age));
    line.set_busy_seconds(absl::ToDoubleSeconds(w.busy_for));
    if (metrics != nullptr && w.replica >= 0) {
      const ServingMetrics::StepWindow window = metrics->StageWindow(w.replica, w.stage);
      line.set_step_p50_seconds(window.p50_seconds);
      line.set_step_p99_seconds(window.p99_seconds);
      line.set_steps(window.steps);
    }
    if (w.replica < 0) {
      *status.add_idle_workers() = line;
    } else {
      *status.mutable_replicas(w.replica)->add_stages() = line;
    }
  }
  for (v1::ReplicaStatusLine& r : *status.mutable_replicas()) {
    std::sort(r.mutable_stages()->begin(), r.mutable_stages()->end(),
              [](const v1::WorkerStatusLine& a, const v1::WorkerStatusLine& b) {
                return a.stage() < b.stage();
              });
  }
  if (metrics != nullptr) {
    status.set_requests_finished(metrics->requests_finished());
    status.set_generated_tokens(metrics->generated_tokens());
    status.set_migrations(metrics->migrations());
  }
  return status;
}

}  // namespace tessera
