// GET /metrics on the HTTP listener: the coordinator's state in Prometheus'
// text exposition format (version 0.0.4), written by hand because Debian
// packages no C++ Prometheus client and the format is a few lines of text.
//
// Today it exposes the security posture, so that a plaintext listener other
// hosts can reach (--insecure) shows on a dashboard and can page someone:
//   tessera_tls_enabled, tessera_api_keys_required,
//   tessera_insecure_listener{listener, address}
// Issue 16 (observability) adds the serving metrics here.
//
// With --api-keys, scraping needs an admin key (Prometheus sends it with
// `authorization: {credentials_file: ...}`): 401 without a key, 403 with a
// key that is not an admin's.
//
// Thread-safety: the handler runs on the HTTP server's thread; the posture
// is immutable.
#ifndef TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_
#define TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_

#include <string>
#include <utility>
#include <vector>

#include "coordinator/admission.h"
#include "coordinator/http/http_server.h"

namespace tessera {

struct SecurityPosture {
  bool tls = false;
  bool api_keys = false;
  // Plaintext listeners other hosts can reach: (flag, address).
  std::vector<std::pair<std::string, std::string>> insecure_listeners;
};

class MetricsEndpoint {
 public:
  // `admission` (which checks the scraper's key) must outlive the server.
  MetricsEndpoint(const Admission* admission, SecurityPosture posture)
      : admission_(admission), posture_(std::move(posture)) {}

  void Register(HttpServer* server);

  // The exposition text (exposed for tests).
  std::string Render() const;

 private:
  HandlerResult Serve(const HttpRequest& request) const;

  const Admission* admission_;
  const SecurityPosture posture_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_METRICS_ENDPOINT_H_
