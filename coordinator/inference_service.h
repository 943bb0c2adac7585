// The client-facing Inference service: Generate (server-streaming),
// Tokenize and GetModelInfo, on gRPC's callback API.
//
// Every request field is checked on receipt (INVALID_ARGUMENT naming the
// field); the request is then tokenized here and handed to the scheduler.
// Each admitted Generate call is a GenerateReactor (inference_service.cc)
// that owns the call's state and deletes itself in OnDone(): no thread waits
// on a stream, so hundreds of open streams cost no threads. The scheduler's
// wake-ups reach the reactors through one service thread (the "stream pump"),
// so the scheduler never does gRPC work under its lock; write completions are
// handled on gRPC's own threads. One write is in flight per call, and the
// events that arrive meanwhile go out coalesced in the next message. A client
// that cancels or passes its deadline cancels the request at once (OnCancel),
// and its KV blocks are freed. Every response and log line carries the
// request id.
//
// Thread-safety: handlers and reactions run on gRPC's threads; the tokenizer
// is immutable and the scheduler and membership are thread-safe. The service
// must outlive the grpc::Server it is registered with; the wakers it hands to
// the scheduler stay safe to call after both are gone.
#ifndef TESSERA_COORDINATOR_INFERENCE_SERVICE_H_
#define TESSERA_COORDINATOR_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/model_config.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/admission.h"
#include "coordinator/membership.h"
#include "coordinator/router.h"
#include "coordinator/serving_metrics.h"
#include "proto/grpc_status.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera {

class StreamPump;

class InferenceService final : public tessera::v1::Inference::CallbackService {
 public:
  // Everything passed in must outlive the service. Generate maps each
  // request onto `admission` (admission.h); the sampling fields a request
  // leaves unset take the model's values there, then Tessera's defaults.
  // `metrics` (optional) gives GetClusterStatus its step times and totals.
  InferenceService(const ModelConfig* config, const Tokenizer* tokenizer, Router* router,
                   Admission* admission, const Membership* membership, int64_t max_context,
                   std::string model_identity, const ServingMetrics* metrics = nullptr);

  ~InferenceService() override;
  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  grpc::ServerWriteReactor<tessera::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const tessera::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const tessera::v1::TokenizeRequest* request,
                                     tessera::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const tessera::v1::GetModelInfoRequest* request,
                                         tessera::v1::ModelInfo* response) override;
  // Admin callers only: PERMISSION_DENIED for another key.
  grpc::ServerUnaryReactor* GetClusterStatus(grpc::CallbackServerContext* context,
                                             const tessera::v1::GetClusterStatusRequest* request,
                                             tessera::v1::ClusterStatus* response) override;

 private:
  // The caller the call's `authorization` metadata names (admission checks
  // it; UNAUTHENTICATED when keys are required and it names none).
  absl::StatusOr<Caller> CallerOf(grpc::CallbackServerContext* context) const;
  absl::Status TokenizeInto(const tessera::v1::TokenizeRequest& request,
                            tessera::v1::TokenizeResponse* response) const;

  const ModelConfig* config_;
  const Tokenizer* tokenizer_;
  Router* router_;
  Admission* admission_;
  const Membership* membership_;
  const int64_t max_context_;
  const std::string model_identity_;
  const ServingMetrics* metrics_;
  // Shared with every waker handed to the scheduler, which may outlive us.
  const std::shared_ptr<StreamPump> pump_;
  std::thread pump_thread_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_INFERENCE_SERVICE_H_
