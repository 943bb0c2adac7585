// The OpenAI-compatible HTTP API of the coordinator: /v1/completions,
// /v1/chat/completions (JSON or server-sent events) and /v1/models, on top
// of the same Scheduler the gRPC Inference service uses.
//
// Requests are validated and tokenized on the HTTP loop thread, submitted to
// the scheduler, and answered by a PendingResponse that the scheduler's
// pushes wake (RequestStream's notifier), so no thread waits per request.
// At most `max_streams` requests are open at once; past that a request gets
// 429 at once. Errors use OpenAI's shape,
// {"error":{"message","type","param","code"}}, with 400 for a bad request,
// 404 (code model_not_found) for a model this server does not serve, 429
// for admission or a full queue, 503 while no pipeline is ready.
// A client that disconnects cancels its request.
//
// Thread-safety: handlers run on the HTTP loop thread; the tokenizer is
// immutable and the scheduler thread-safe.
#ifndef TESSERA_COORDINATOR_HTTP_OPENAI_API_H_
#define TESSERA_COORDINATOR_HTTP_OPENAI_API_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tokenizer/tokenizer.h"
#include "common/http/http_server.h"
#include "coordinator/admission.h"

namespace tessera {

struct OpenAiOptions {
  // The names requests may use for the served model, all listed by
  // /v1/models; the first is its canonical id (the file name), the rest
  // --served-model-name aliases. A request naming another model gets 404
  // model_not_found; one naming none is served.
  std::vector<std::string> model_ids;
  int64_t max_streams = 512;          // open requests; beyond: 429
  // Counts the refusals made here, before admission (a malformed body, too
  // many open requests); null: none. Must outlive the API.
  ServingMetrics* metrics = nullptr;
  int32_t default_chat_max_tokens = 128;
  int32_t default_completion_max_tokens = 16;  // OpenAI's default
};

class OpenAiApi {
 public:
  // `tokenizer` and `admission` must outlive the server the API is
  // registered on. Requests go through `admission` (admission.h), as gRPC
  // Generate's do; the sampling fields a request leaves out take the model's
  // values there, then OpenAI's defaults.
  OpenAiApi(const Tokenizer* tokenizer, Admission* admission, OpenAiOptions options);

  void Register(HttpServer* server);

  // An error response in OpenAI's shape; `param` names the field, if any.
  static HttpResponse Error(int status, const std::string& message,
                            const std::string& param = "", const std::string& code = "");
  // The error response for a refusal: its HTTP status (401 with
  // WWW-Authenticate and code invalid_api_key; 429 with the quota's
  // Retry-After), message and `param`.
  static HttpResponse Error(const absl::Status& status, const std::string& param = "",
                            const std::string& code = "");
  // The HTTP status an absl::Status from the scheduler maps to.
  static int HttpStatusOf(const absl::Status& status);

  int64_t open_requests() const { return open_->load(); }

 private:
  // The caller the request's Authorization header names (admission checks
  // it; UNAUTHENTICATED when keys are required and it names none).
  absl::StatusOr<Caller> CallerOf(const HttpRequest& request) const;
  HandlerResult Models(const HttpRequest& request) const;
  HandlerResult Complete(const HttpRequest& request, const Waker& waker, bool chat);

  const Tokenizer* tokenizer_;
  Admission* admission_;
  const OpenAiOptions options_;
  // Shared with the pending responses, which give their slot back when they
  // end, however they end.
  std::shared_ptr<std::atomic<int64_t>> open_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_OPENAI_API_H_
