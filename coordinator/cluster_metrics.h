// The coordinator's metrics that are read from live state when Prometheus
// scrapes: per replica its queue, running requests, KV blocks and state; per
// worker its heartbeat age and what it serves; the security posture; and
// build information. (Counters and histograms of events are
// serving_metrics.h.)
//
// Thread-safety: the collector calls the router's and membership's
// thread-safe accessors; both must outlive it.
#ifndef TESSERA_COORDINATOR_CLUSTER_METRICS_H_
#define TESSERA_COORDINATOR_CLUSTER_METRICS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/membership.h"
#include "coordinator/router.h"
#include "prometheus/collectable.h"

namespace tessera {

// What the coordinator's listeners expose, for the security gauges.
struct SecurityPosture {
  bool tls = false;
  bool api_keys = false;
  // Plaintext listeners other hosts can reach: (flag, address).
  std::vector<std::pair<std::string, std::string>> insecure_listeners;
};

// `membership` may be null (tests of the router alone).
std::shared_ptr<prometheus::Collectable> MakeClusterCollector(const Router* router,
                                                              const Membership* membership,
                                                              SecurityPosture posture,
                                                              std::string model_name);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_CLUSTER_METRICS_H_
