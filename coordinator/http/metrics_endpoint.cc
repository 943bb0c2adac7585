#include "coordinator/http/metrics_endpoint.h"

#include "absl/strings/str_cat.h"
#include "common/metrics/exposition.h"
#include "coordinator/http/openai_api.h"

namespace tessera {

void MetricsEndpoint::Register(HttpServer* server) {
  server->Route("GET", "/metrics",
                [this](const HttpRequest& r, const Waker&) { return Serve(r); });
}

std::string MetricsEndpoint::Render() const { return RenderMetrics(collectables_); }

HandlerResult MetricsEndpoint::Serve(const HttpRequest& request) const {
  HandlerResult result;
  if (admission_->keys_required()) {
    const auto it = request.headers.find("authorization");
    absl::StatusOr<Caller> caller = admission_->Authenticate(
        it == request.headers.end() ? "" : it->second, request.peer, "http");
    if (!caller.ok()) {
      result.response = OpenAiApi::Error(caller.status());
      return result;
    }
    if (!caller->admin) {
      result.response = OpenAiApi::Error(absl::PermissionDeniedError(absl::StrCat(
          "key ", caller->key_id, " is not an admin key; /metrics needs one")));
      return result;
    }
  }
  result.response.content_type = kMetricsContentType;
  result.response.body = Render();
  return result;
}

}  // namespace tessera
