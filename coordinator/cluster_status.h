// What `tessera status` shows (Inference.GetClusterStatus): every replica
// with its state, queue and KV use and, stage by stage, the worker serving
// it (address, device, layers, state, heartbeat age, step p50/p99 over its
// last steps); the idle workers; and the cluster's totals.
//
// Thread-safety: reads the router's, membership's and metrics' thread-safe
// accessors.
#ifndef TESSERA_COORDINATOR_CLUSTER_STATUS_H_
#define TESSERA_COORDINATOR_CLUSTER_STATUS_H_

#include <string>

#include "coordinator/membership.h"
#include "coordinator/router.h"
#include "coordinator/serving_metrics.h"
#include "tessera/v1/inference.pb.h"

namespace tessera {

// `metrics` may be null (no step times or totals then).
tessera::v1::ClusterStatus DescribeCluster(const std::string& model, const Router& router,
                                           const Membership& membership,
                                           const ServingMetrics* metrics);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_CLUSTER_STATUS_H_
