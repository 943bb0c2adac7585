// Prometheus metrics on their own port: `--metrics-listen HOST:PORT` on the
// coordinator and on every worker, GET /metrics in the text exposition
// format 0.0.4, served by the common HTTP server (common/http) on its own
// thread. (prometheus-cpp's own exposer, civetweb, runs its threads on a
// fixed 100 KB stack, which a CUDA worker's static TLS alone exceeds.)
//
// What is served is the union of the collectables given (a
// prometheus::Registry of counters and histograms, and scrape-time
// collectors that read live state); each scrape calls their Collect().
//
// With the node's TLS certificate the port is HTTPS (Prometheus then needs
// the cluster CA in its tls_config); without TLS, an address other hosts can
// reach is refused at start unless --insecure, as for every listener
// (NodeSecurity::CheckListener, checked by the caller). No API key is asked:
// the numbers are aggregates (no prompts, request ids or keys).
//
// Thread-safety: the server's thread calls Collect() concurrently with
// everything else; collectables must be thread-safe and outlive the server.
// Start and the destructor from one thread.
#ifndef TESSERA_COMMON_METRICS_METRICS_SERVER_H_
#define TESSERA_COMMON_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http/http_server.h"
#include "prometheus/collectable.h"

namespace tessera {

class MetricsServer {
 public:
  // Listens on `address` ("HOST:PORT"; port 0 picks one), over HTTPS when
  // `tls_cert_pem` and `tls_key_pem` are given. The errors of
  // HttpServer::Start, naming --metrics-listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
      const std::string& tls_cert_pem = "", const std::string& tls_key_pem = "");
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "HOST:PORT" with the port actually bound.
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<HttpServer> http_;
  std::string address_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_METRICS_SERVER_H_
