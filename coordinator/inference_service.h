// The client-facing Inference service: Generate (server-streaming),
// Tokenize and GetModelInfo.
//
// Every request field is checked on receipt (INVALID_ARGUMENT naming the
// field); the request is then tokenized here and handed to the scheduler,
// and this handler streams the scheduler's events to the client. A client
// that cancels or passes its deadline cancels the request, whose KV blocks
// are freed at once. Every response and log line carries the request id.
//
// Thread-safety: handlers run on gRPC's threads; the tokenizer is immutable
// and the scheduler and membership are thread-safe.
#ifndef TESSERA_COORDINATOR_INFERENCE_SERVICE_H_
#define TESSERA_COORDINATOR_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "common/model_config.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/membership.h"
#include "coordinator/scheduler.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera {

class InferenceService final : public tessera::v1::Inference::Service {
 public:
  // Everything passed in must outlive the service.
  // `sampling_defaults` (the model's generation_config.json values) replace
  // Tessera's defaults for the sampling fields a request leaves unset.
  InferenceService(const ModelConfig* config, const Tokenizer* tokenizer, Scheduler* scheduler,
                   const Membership* membership, int64_t max_context, std::string model_identity,
                   SamplingDefaults sampling_defaults = {});

  grpc::Status Generate(grpc::ServerContext* context, const tessera::v1::GenerateRequest* request,
                        grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const tessera::v1::TokenizeRequest* request,
                        tessera::v1::TokenizeResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context,
                            const tessera::v1::GetModelInfoRequest* request,
                            tessera::v1::ModelInfo* response) override;

 private:
  // The prompt's token ids, or INVALID_ARGUMENT naming the field.
  absl::StatusOr<std::vector<int32_t>> PromptTokens(const tessera::v1::GenerateRequest& request,
                                                    const std::string& request_id) const;
  absl::StatusOr<std::vector<int32_t>> ChatTokens(const tessera::v1::ChatPrompt& chat,
                                                  const std::string& request_id) const;

  const ModelConfig* config_;
  const Tokenizer* tokenizer_;
  Scheduler* scheduler_;
  const Membership* membership_;
  const int64_t max_context_;
  const std::string model_identity_;
  const SamplingDefaults sampling_defaults_;
  std::atomic<uint64_t> next_request_{1};
};

// Maps an absl::Status to the grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_INFERENCE_SERVICE_H_
