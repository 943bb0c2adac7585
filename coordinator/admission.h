// The one way a request enters the scheduler. Both front ends (gRPC
// Generate, inference_service.h; the OpenAI HTTP API, http/openai_api.h)
// map their wire shape onto an AdmissionRequest and call Admit, which
// assigns the request id, turns the prompt (text, token ids or chat
// messages) into ids, applies sampling defaults (what the client set, else
// the model's recommended values, else the API's own defaults), checks
// that a pipeline is ready, submits to the scheduler (which validates every
// field, request_spec.h) and logs the outcome. So the same request is
// refused, defaulted and logged the same way whichever API carries it.
//
// Every error names the request id; INVALID_ARGUMENT ones also carry the
// offending field as a payload (FieldOf in request_spec.h), which the HTTP
// API returns as OpenAI's `param`.
//
// Access control lives here too, so both APIs enforce it the same way:
// Authenticate turns an Authorization value into a Caller (api_keys.h);
// Admit charges the caller's quotas (rate_limiter.h: RESOURCE_EXHAUSTED with
// a retry-after payload) and writes every request, admitted or refused, to
// the audit log when it ends (audit_log.h).
//
// Thread-safety: Admit may be called from any thread.
#ifndef TESSERA_COORDINATOR_ADMISSION_H_
#define TESSERA_COORDINATOR_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/access/api_keys.h"
#include "coordinator/access/audit_log.h"
#include "coordinator/access/caller.h"
#include "coordinator/access/rate_limiter.h"
#include "coordinator/admission_request.h"
#include "coordinator/request_stream.h"
#include "coordinator/router.h"
#include "coordinator/serving_metrics.h"

namespace tessera {

struct Admitted {
  std::string request_id;
  std::shared_ptr<RequestStream> stream;
};

class Admission {
 public:
  struct Options {
    SamplingDefaults model_defaults;  // the model's generation_config.json values
    // Why no pipeline is ready, or "" when one is.
    std::function<std::string()> not_ready_reason;
    // Each may be null: no API keys (every caller may do everything), no
    // quotas, no audit log. Must outlive the admission and its requests.
    const ApiKeyStore* keys = nullptr;
    RateLimiter* limiter = nullptr;
    AuditLog* audit = nullptr;
    std::string model_name;  // in audit records
    // Counts refusals by reason and every admitted request's end; null:
    // none. Must outlive the admission and its requests.
    ServingMetrics* metrics = nullptr;
  };

  // `tokenizer` and `router` must outlive this.
  Admission(const Tokenizer* tokenizer, Router* router, Options options);

  // The caller an Authorization value ("Bearer KEY", "" when absent) names,
  // from `client` (the peer's address) over `api` ("grpc", "http").
  // UNAUTHENTICATED (audited) when keys are required and it names none.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization, std::string client,
                                      std::string api) const;
  bool keys_required() const { return options_.keys != nullptr; }

  absl::StatusOr<Admitted> Admit(AdmissionRequest request);

  const SamplingDefaults& model_defaults() const { return options_.model_defaults; }

 private:
  const Tokenizer* tokenizer_;
  Router* router_;
  const Options options_;
  std::atomic<uint64_t> next_request_{1};
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ADMISSION_H_
