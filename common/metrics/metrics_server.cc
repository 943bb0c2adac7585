#include "common/metrics/metrics_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/metrics/exposition.h"

namespace tessera {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
    const std::string& tls_cert_pem, const std::string& tls_key_pem) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->collectables_ = std::move(collectables);
  HttpServerOptions options;
  // Scrapers are few: small caps, and plain-text errors.
  options.max_connections = 64;
  options.max_body_bytes = 64 * 1024;
  options.tls_cert_pem = tls_cert_pem;
  options.tls_key_pem = tls_key_pem;
  server->http_ = std::make_unique<HttpServer>(options);
  MetricsServer* self = server.get();
  server->http_->Route("GET", "/metrics", [self](const HttpRequest&, const Waker&) {
    HandlerResult result;
    result.response.content_type = kMetricsContentType;
    result.response.body = RenderMetrics(self->collectables_);
    return result;
  });
  if (absl::Status s = server->http_->Start(address); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--metrics-listen ", address, ": ", s.message()));
  }
  server->address_ = absl::StrCat(address.substr(0, address.rfind(':')), ":", server->http_->port());
  return server;
}

MetricsServer::~MetricsServer() {
  if (http_ != nullptr) http_->Stop();
}

}  // namespace tessera
