// The Prometheus text exposition (format 0.0.4) of a set of collectables:
// what GET /metrics answers, on the coordinator's HTTP port and (through
// MetricsServer) on --metrics-listen.
//
// Thread-safety: pure over thread-safe collectables.
#ifndef TESSERA_COMMON_METRICS_EXPOSITION_H_
#define TESSERA_COMMON_METRICS_EXPOSITION_H_

#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace tessera {

// Every family of every collectable, in order, serialized as text.
std::string RenderMetrics(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

// The content type of that text.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_EXPOSITION_H_
