#include "coordinator/cluster_metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/metrics/build_info.h"
#include "common/metrics/collector.h"

namespace tessera {
namespace {

using Labels = FamilyBuilder::Labels;

void AddSecurity(const SecurityPosture& p, std::vector<prometheus::MetricFamily>* out) {
  FamilyBuilder::Gauge("tessera_tls_enabled",
                       "1 when the coordinator's listeners and its links to workers use TLS.")
      .Add(p.tls ? 1 : 0)
      .AppendTo(out);
  FamilyBuilder::Gauge("tessera_api_keys_required",
                       "1 when the client APIs require an API key (--api-keys).")
      .Add(p.api_keys ? 1 : 0)
      .AppendTo(out);
  FamilyBuilder insecure = FamilyBuilder::Gauge(
      "tessera_insecure_listener",
      "1 for each listener serving plaintext to other hosts (--insecure): anyone on the "
      "network can read its traffic.");
  for (const auto& [flag, address] : p.insecure_listeners) {
    insecure.Add({{"listener", flag}, {"address", address}}, 1);
  }
  insecure.AppendTo(out);
}

void AddReplicas(const Router& router, const Labels& model,
                 std::vector<prometheus::MetricFamily>* out) {
  FamilyBuilder running = FamilyBuilder::Gauge(
      "tessera_requests_running", "Requests admitted to a replica and not yet finished.");
  FamilyBuilder waiting = FamilyBuilder::Gauge(
      "tessera_requests_waiting",
      "Requests waiting for a replica to admit them (new, and preempted ones).");
  FamilyBuilder used = FamilyBuilder::Gauge(
      "tessera_kv_cache_used_blocks",
      "KV blocks held by running requests (each stage of the replica holds as many).");
  FamilyBuilder total = FamilyBuilder::Gauge("tessera_kv_cache_capacity_blocks",
                                             "KV blocks of the replica's pool.");
  FamilyBuilder usage = FamilyBuilder::Gauge(
      "tessera_kv_cache_usage_ratio",
      "Fraction of the replica's KV blocks in use, 0 to 1 (blocks holding only reusable "
      "prefix-cache entries count as free).");
  FamilyBuilder state = FamilyBuilder::Gauge(
      "tessera_replica_state",
      "1 for the state a replica is in (serving, draining, faulted, down), 0 for the others.");
  for (int slot = 0; slot < router.slots(); ++slot) {
    const SchedulerStats st = router.replica_stats(slot);
    Labels l = model;
    l.push_back({"replica", absl::StrCat(slot)});
    running.Add(l, static_cast<double>(st.running));
    waiting.Add(l, static_cast<double>(st.queued));
    used.Add(l, static_cast<double>(st.total_blocks - st.free_blocks));
    total.Add(l, static_cast<double>(st.total_blocks));
    usage.Add(l, st.total_blocks > 0 ? static_cast<double>(st.total_blocks - st.free_blocks) /
                                           static_cast<double>(st.total_blocks)
                                     : 0.0);
    const std::string now = router.replica_state(slot);
    for (const char* s : {"serving", "draining", "faulted", "down"}) {
      Labels sl = l;
      sl.push_back({"state", s});
      state.Add(sl, now == s ? 1 : 0);
    }
  }
  for (FamilyBuilder* f : {&running, &waiting, &used, &total, &usage, &state}) f->AppendTo(out);
}

void AddWorkers(const Membership& membership, std::vector<prometheus::MetricFamily>* out) {
  FamilyBuilder age = FamilyBuilder::Gauge(
      "tessera_worker_heartbeat_age_seconds", "Seconds since a worker's last message.");
  FamilyBuilder busy = FamilyBuilder::Gauge(
      "tessera_worker_step_busy_seconds",
      "Seconds a worker has been in its current step (0: between steps); a value that keeps "
      "growing is a stuck stage.");
  FamilyBuilder info = FamilyBuilder::Gauge(
      "tessera_worker_info",
      "1 per joined worker, labelled with its address, device, replica, stage and state.");
  for (const WorkerView& w : membership.Workers()) {
    const Labels l{{"worker", w.id}};
    age.Add(l, absl::ToDoubleSeconds(w.heartbeat_age));
    busy.Add(l, absl::ToDoubleSeconds(w.busy_for));
    info.Add({{"worker", w.id},
              {"address", w.address},
              {"device", w.device},
              {"replica", w.replica < 0 ? "" : absl::StrCat(w.replica)},
              {"stage", w.stage < 0 ? "" : absl::StrCat(w.stage)},
              {"state", w.state}},
             1);
  }
  for (FamilyBuilder* f : {&age, &busy, &info}) f->AppendTo(out);
}

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeClusterCollector(const Router* router,
                                                              const Membership* membership,
                                                              SecurityPosture posture,
                                                              std::string model_name) {
  return std::make_shared<Collector>([router, membership, posture = std::move(posture),
                                      model = Labels{{"model_name", std::move(model_name)}}] {
    std::vector<prometheus::MetricFamily> out;
    FamilyBuilder::Gauge("tessera_build_info",
                         "1, labelled with the version and git commit this binary was built "
                         "from.")
        .Add({{"version", BuildVersion()}, {"commit", BuildCommit()}}, 1)
        .AppendTo(&out);
    AddSecurity(posture, &out);
    AddReplicas(*router, model, &out);
    if (membership != nullptr) AddWorkers(*membership, &out);
    return out;
  });
}

}  // namespace tessera
