// GET /metrics on the coordinator's HTTP listener: every metric of the
// coordinator (serving_metrics.h, cluster_metrics.h) in Prometheus' text
// exposition format (0.0.4, prometheus-cpp's serializer). The same
// collectables are served on --metrics-listen (common/metrics) without the
// admin check below.
//
// With --api-keys, scraping here needs an admin key (Prometheus sends it with
// `authorization: {credentials_file: ...}`): 401 without a key, 403 with a
// key that is not an admin's.
//
// Thread-safety: the handler runs on the HTTP server's thread; the
// collectables are thread-safe.
#ifndef TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_
#define TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/admission.h"
#include "common/http/http_server.h"
#include "prometheus/collectable.h"

namespace tessera {

class MetricsEndpoint {
 public:
  // `admission` (which checks the scraper's key) must outlive the server.
  MetricsEndpoint(const Admission* admission,
                  std::vector<std::shared_ptr<prometheus::Collectable>> collectables)
      : admission_(admission), collectables_(std::move(collectables)) {}

  void Register(HttpServer* server);

  // The exposition text (exposed for tests).
  std::string Render() const;

 private:
  HandlerResult Serve(const HttpRequest& request) const;

  const Admission* admission_;
  const std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_
