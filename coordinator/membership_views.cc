// What the membership reports about itself: readiness, every worker as
// `tessera status` and the metrics see it, and the stages of the formed
// replicas for GetModelInfo. (Joining, planning and liveness are in
// membership.cc.)
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "coordinator/membership.h"
#include "coordinator/membership_worker.h"

namespace tessera {

bool Membership::ready() const {
  absl::MutexLock lock(&mu_);
  for (const Replica& r : replicas_) {
    if (r.ready) return true;
  }
  return false;
}

std::string Membership::not_ready_reason() const {
  absl::MutexLock lock(&mu_);
  for (const Replica& r : replicas_) {
    if (r.ready) return "";
  }
  return not_ready_reason_;
}

std::vector<WorkerView> Membership::Workers() const {
  std::vector<std::shared_ptr<Worker>> workers;
  std::vector<WorkerView> views;
  {
    absl::MutexLock lock(&mu_);
    workers = workers_;
    for (const auto& w : workers) {
      WorkerView v;
      v.id = w->id;
      v.address = w->address;
      v.device = w->devices.type().empty() ? "cpu" : w->devices.type();
      v.isa = w->devices.isa();
      v.device_count = std::max(1, w->devices.count());
      v.tensor_parallel = std::max(1, w->devices.tensor_parallel());
      v.replica = w->replica;
      v.stage = w->stage;
      if (w->stage >= 0) {
        v.layer_begin = w->assignment.layer_begin();
        v.layer_end = w->assignment.layer_end();
      }
      v.weight_bytes = w->weight_bytes;
      v.state = w->excluded         ? "excluded"
                : w->replica < 0    ? "idle"
                : w->ready          ? "serving"
                                    : "loading";
      views.push_back(std::move(v));
    }
  }
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < workers.size(); ++i) {
    absl::MutexLock lock(&workers[i]->write_mu);
    views[i].heartbeat_age = now - workers[i]->last_seen;
    const int64_t busy = workers[i]->busy_since_unix_micros;
    views[i].busy_for = busy > 0 ? now - absl::FromUnixMicros(busy) : absl::ZeroDuration();
  }
  return views;
}

void Membership::DescribeStages(v1::ModelInfo* info) const {
  absl::MutexLock lock(&mu_);
  info->set_ready(false);
  info->set_kv_block_size(options_.plan.block_size);
  for (size_t slot = 0; slot < replicas_.size(); ++slot) {
    const Replica& r = replicas_[slot];
    if (r.ready && !info->ready()) {
      info->set_ready(true);
      info->set_kv_blocks(r.kv_blocks);  // of the first ready replica
    }
    for (size_t i = 0; i < r.stages.size(); ++i) {
      const Worker& w = *r.stages[i];
      v1::StageInfo* s = info->add_stages();
      s->set_index(static_cast<int>(i));
      s->set_worker_address(w.address);
      s->set_layer_begin(w.assignment.layer_begin());
      s->set_layer_end(w.assignment.layer_end());
      s->set_weight_bytes(w.weight_bytes);
      s->set_ready(w.ready);
      s->set_replica(static_cast<int>(slot));
    }
  }
}

}  // namespace tessera
