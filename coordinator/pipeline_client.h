// The coordinator's end of a pipeline: one long-lived Stage stream to stage
// 0. Steps go down it; their results (token ids and logprobs from the last
// stage, relayed back through every stage) come back on the same stream and
// are matched to their step by id.
//
// Each RunStep waits with a deadline, so a hung stage turns into
// DEADLINE_EXCEEDED naming the step rather than a hang; a broken stream fails
// every waiting step with UNAVAILABLE.
//
// Thread-safety: RunStep may be called from several threads at once (several
// micro-batches in flight); a reader thread owns the stream's read side.
#ifndef TESSERA_COORDINATOR_PIPELINE_CLIENT_H_
#define TESSERA_COORDINATOR_PIPELINE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/inference.pb.h"
#include "tessera/v1/stage.grpc.pb.h"

namespace tessera {

class PipelineClient {
 public:
  // Opens the stream to `stage0_address`; the connection itself is made
  // lazily by gRPC, so failures show up in the first RunStep.
  explicit PipelineClient(std::string stage0_address);
  ~PipelineClient();
  PipelineClient(const PipelineClient&) = delete;
  PipelineClient& operator=(const PipelineClient&) = delete;

  // Sends `request` (its step_id is assigned here) and waits for its result.
  // A result carrying a non-OK code is returned as that status. Bytes sent
  // are added to bytes_sent().
  absl::StatusOr<tessera::v1::StepResult> RunStep(tessera::v1::StepRequest request,
                                                  absl::Duration timeout);
  // Fire-and-forget release of finished sequences on every stage.
  void Release(const std::vector<int64_t>& seq_ids);

  const std::string& address() const { return address_; }
  uint64_t bytes_sent() const;
  // Timing of the steps answered so far (see PipelineStats in inference.proto).
  tessera::v1::PipelineStats stats() const;

 private:
  void ReadLoop();

  const std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tessera::v1::Stage::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<tessera::v1::StepRequest, tessera::v1::StepResult>>
      stream_;
  std::thread reader_;

  mutable absl::Mutex mu_;
  uint64_t next_step_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t bytes_sent_ ABSL_GUARDED_BY(mu_) = 0;
  tessera::v1::PipelineStats stats_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_message_ ABSL_GUARDED_BY(mu_);
  // step id -> its result once it arrived (absent while waiting).
  absl::flat_hash_map<uint64_t, tessera::v1::StepResult> results_ ABSL_GUARDED_BY(mu_);
  absl::Mutex write_mu_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_PIPELINE_CLIENT_H_
