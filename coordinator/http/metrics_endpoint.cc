#include "coordinator/http/metrics_endpoint.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "coordinator/http/openai_api.h"

namespace tessera {
namespace {

// A label value with \, " and newlines escaped, as the format requires.
std::string LabelValue(const std::string& v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

}  // namespace

void MetricsEndpoint::Register(HttpServer* server) {
  server->Route("GET", "/metrics",
                [this](const HttpRequest& r, const Waker&) { return Serve(r); });
}

std::string MetricsEndpoint::Render() const {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP tessera_tls_enabled 1 when the coordinator's listeners and its links "
                  "to workers use TLS.\n"
                  "# TYPE tessera_tls_enabled gauge\n"
                  "tessera_tls_enabled ",
                  posture_.tls ? 1 : 0, "\n");
  absl::StrAppend(&out,
                  "# HELP tessera_api_keys_required 1 when the client APIs require an API key "
                  "(--api-keys).\n"
                  "# TYPE tessera_api_keys_required gauge\n"
                  "tessera_api_keys_required ",
                  posture_.api_keys ? 1 : 0, "\n");
  absl::StrAppend(&out,
                  "# HELP tessera_insecure_listener 1 for each listener serving plaintext to "
                  "other hosts (--insecure): anyone on the network can read its traffic.\n"
                  "# TYPE tessera_insecure_listener gauge\n");
  for (const auto& [flag, address] : posture_.insecure_listeners) {
    absl::StrAppend(&out, "tessera_insecure_listener{listener=\"", LabelValue(flag),
                    "\",address=\"", LabelValue(address), "\"} 1\n");
  }
  return out;
}

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
  result.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  result.response.body = Render();
  return result;
}

}  // namespace tessera
