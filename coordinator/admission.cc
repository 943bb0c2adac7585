#include "coordinator/admission.h"

#include <random>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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

absl::StatusOr<Caller> Admission::Authenticate(absl::string_view authorization, std::string client,
                                               std::string api) const {
  Caller caller;
  caller.client = std::move(client);
  caller.api = std::move(api);
  if (options_.keys == nullptr) return caller;
  absl::StatusOr<ApiKey> key = options_.keys->Authenticate(authorization);
  if (!key.ok()) {
    kLog.Warning("refused a %s call from %s: %s", caller.api, caller.client,
                 key.status().message());
    if (options_.audit != nullptr) {
      AuditRecord r;
      r.time = absl::Now();
      r.caller = caller;
      r.model = options_.model_name;
      r.status = key.status();
      options_.audit->Write(r);
    }
    if (options_.metrics != nullptr) options_.metrics->Rejected(RejectReason::kUnauthenticated);
    return key.status();
  }
  caller.key_id = key->id;
  caller.admin = key->admin;
  caller.limits = key->limits;
  return caller;
}

absl::StatusOr<Admitted> Admission::Admit(AdmissionRequest request) {
  AuditRecord audit;
  audit.time = absl::Now();
  audit.caller = request.caller;
  audit.model = options_.model_name;
  if (options_.audit != nullptr && options_.audit->prompts()) {
    audit.prompt = PromptForAudit(request.prompt);
  }
  // Every refusal is audited and counted the same way.
  auto refuse = [&](absl::Status status, RejectReason reason) {
    if (options_.metrics != nullptr) options_.metrics->Rejected(reason);
    if (options_.audit != nullptr) {
      audit.status = status;
      audit.latency = absl::Now() - audit.time;
      options_.audit->Write(audit);
    }
    return status;
  };

  std::string id = std::move(request.request_id);
  if (id.size() > kMaxRequestIdBytes) {
    return refuse(FieldError("request_id", absl::StrFormat("request_id is %d bytes; at most %d",
                                                           id.size(), kMaxRequestIdBytes)),
                  RejectReason::kInvalid);
  }
  if (id.empty()) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    id = absl::StrFormat("%s-%d-%04x", request.id_prefix, next_request_++, rng() & 0xffff);
  }
  audit.request_id = id;
  const std::string log_note = request.log_note;
  const Caller caller = request.caller;
  absl::StatusOr<RequestSpec> spec =
      ToRequestSpec(*tokenizer_, std::move(request), options_.model_defaults, id);
  if (!spec.ok()) return refuse(ForRequest(spec.status(), id), RejectReason::kInvalid);
  audit.prompt_tokens = static_cast<int64_t>(spec->prompt.size());
  if (options_.not_ready_reason) {
    if (const std::string why = options_.not_ready_reason(); !why.empty()) {
      // Say why: still joining, loading, or the planner's numbers.
      return refuse(absl::UnavailableError(
                        absl::StrFormat("request %s: no pipeline is ready: %s", id, why)),
                    RejectReason::kUnavailable);
    }
  }
  std::shared_ptr<RateLimiter::Lease> lease;
  if (options_.limiter != nullptr) {
    absl::StatusOr<std::unique_ptr<RateLimiter::Lease>> acquired =
        options_.limiter->Acquire(caller, audit.prompt_tokens);
    if (!acquired.ok()) {
      kLog.ForRequest(id).Info("refused: %s", acquired.status().ToString());
      // A prompt larger than the key's whole token quota is a bad request.
      return refuse(ForRequest(acquired.status(), id),
                    absl::IsResourceExhausted(acquired.status()) ? RejectReason::kRateLimited
                                                                 : RejectReason::kInvalid);
    }
    lease = *std::move(acquired);
  }
  const size_t prompt_tokens = spec->prompt.size();
  absl::StatusOr<std::shared_ptr<RequestStream>> stream = router_->Submit(*std::move(spec));
  if (!stream.ok()) {
    kLog.ForRequest(id).Info("refused: %s", stream.status().ToString());
    return refuse(stream.status(), absl::IsResourceExhausted(stream.status()) ? RejectReason::kQueueFull
                                   : absl::IsUnavailable(stream.status()) ? RejectReason::kUnavailable
                                                                          : RejectReason::kInvalid);
  }
  if (lease != nullptr || options_.audit != nullptr || options_.metrics != nullptr) {
    // Runs once, on whichever thread ends the stream (maybe under the
    // scheduler's lock): nothing here takes a scheduler lock.
    (*stream)->SetOnDone([lease, audit, log = options_.audit,
                          metrics = options_.metrics](const StreamOutcome& end) mutable {
      if (metrics != nullptr) metrics->Finished(end, absl::Now() - audit.time);
      if (lease != nullptr) lease->ChargeTokens(end.completion_tokens);
      lease.reset();  // the stream slot is free from here
      if (log == nullptr) return;
      audit.completion_tokens = end.completion_tokens;
      audit.finish_reason = end.status.ok() ? end.finish_reason : "";
      audit.status = end.status;
      audit.latency = absl::Now() - audit.time;
      log->Write(audit);
    });
  }
  kLog.ForRequest(id).Info("%d prompt tokens%s%s", prompt_tokens,
                           caller.key_id.empty() ? "" : ", key " + caller.key_id, log_note);
  return Admitted{std::move(id), *std::move(stream)};
}

}  // namespace tessera
