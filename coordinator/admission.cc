#include "coordinator/admission.h"

#include <random>
#include <utility>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "common/log.h"

namespace tessera {
namespace {

const Logger kLog("admission");

// `status` with "request <id>: " before its message, payloads kept.
absl::Status ForRequest(const absl::Status& status, const std::string& id) {
  absl::Status out(status.code(), absl::StrFormat("request %s: %s", id, status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace

Admission::Admission(const Tokenizer* tokenizer, Router* router, Options options)
    : tokenizer_(tokenizer), router_(router), options_(std::move(options)) {}

absl::StatusOr<Admitted> Admission::Admit(AdmissionRequest request) {
  std::string id = std::move(request.request_id);
  if (id.size() > kMaxRequestIdBytes) {
    return FieldError("request_id", absl::StrFormat("request_id is %d bytes; at most %d",
                                                    id.size(), kMaxRequestIdBytes));
  }
  if (id.empty()) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    id = absl::StrFormat("%s-%d-%04x", request.id_prefix, next_request_++, rng() & 0xffff);
  }
  const std::string log_note = request.log_note;
  absl::StatusOr<RequestSpec> spec =
      ToRequestSpec(*tokenizer_, std::move(request), options_.model_defaults, id);
  if (!spec.ok()) return ForRequest(spec.status(), id);
  if (options_.not_ready_reason) {
    if (const std::string why = options_.not_ready_reason(); !why.empty()) {
      // Say why: still joining, loading, or the planner's numbers.
      return absl::UnavailableError(
          absl::StrFormat("request %s: no pipeline is ready: %s", id, why));
    }
  }
  const size_t prompt_tokens = spec->prompt.size();
  absl::StatusOr<std::shared_ptr<RequestStream>> stream = router_->Submit(*std::move(spec));
  if (!stream.ok()) {
    kLog.ForRequest(id).Info("refused: %s", stream.status().ToString());
    return stream.status();
  }
  kLog.ForRequest(id).Info("%d prompt tokens%s", prompt_tokens, log_note);
  return Admitted{std::move(id), *std::move(stream)};
}

}  // namespace tessera
