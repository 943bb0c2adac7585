// The worker's Stage gRPC service: the long-lived step streams of the
// pipeline, and a status query.
//
// Each upstream stream (from the coordinator for stage 0, from the previous
// stage otherwise) is served by one handler thread that decodes and checks
// every StepRequest against this stage's shapes, runs it on the
// StageExecutor, and either answers (last stage: sampled tokens, sent on the
// coordinator's Results stream for the step's session) or forwards the
// request with this stage's hidden states and trace to the next stage over a
// stream of its own. A relay thread per stream carries what comes back from
// the next stage (errors, and a notice when it breaks) upstream. Because
// forwarding does not wait for the answer, several micro-batches can be in
// flight along the pipeline at once.
//
// A bad step is answered with its own error result on the Steps stream,
// relayed to the coordinator; the stream stays open.
//
// Every call is checked against the plan first (node_security.h): Steps
// only from the planned upstream node and for the epoch current when the
// stream opened, Results only from the coordinator, GetWorkerStatus from any
// node of the cluster. A refusal is logged with the peer.
//
// Thread-safety: the service is shared by gRPC's threads; the executor is
// guarded by WorkerState's mutex, and each stream's upstream writes by a
// per-stream mutex.
#ifndef TESSERA_WORKER_STAGE_SERVICE_H_
#define TESSERA_WORKER_STAGE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/node_security.h"
#include "tessera/v1/stage.grpc.pb.h"
#include "worker/result_routes.h"
#include "worker/stage_executor.h"

namespace tessera {

// What the worker currently serves: set by the control session when an
// assignment has been loaded, read by the stage service.
struct WorkerState {
  absl::Mutex mu;
  std::string worker_id ABSL_GUARDED_BY(mu);
  int stage_index ABSL_GUARDED_BY(mu) = -1;
  // The replica epoch of the current assignment; steps of another are
  // refused (StepRequest.epoch).
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  std::string next_stage_address ABSL_GUARDED_BY(mu);
  // Who may stream steps into this stage and who may open Results, by
  // certificate name (StageAssignment.upstream_peer, coordinator_peer).
  std::string upstream_peer ABSL_GUARDED_BY(mu);
  std::string coordinator_peer ABSL_GUARDED_BY(mu);
  // How peers are checked and how this stage proves itself to the next.
  const NodeSecurity* security = nullptr;
  std::unique_ptr<StageExecutor> executor ABSL_GUARDED_BY(mu);
  uint64_t resident_file_bytes ABSL_GUARDED_BY(mu) = 0;

  std::atomic<uint64_t> steps{0};
  // When the step running now began (unix µs; 0: none), for heartbeats.
  std::atomic<int64_t> busy_since_unix_micros{0};
  // Fault injection for failover drills (--fault-stall-after-steps): the
  // step with this 1-based number stalls for fault_stall before it runs.
  uint64_t fault_stall_step = 0;
  absl::Duration fault_stall = absl::Seconds(20);
  std::atomic<uint64_t> steps_started{0};
  std::atomic<uint64_t> tokens{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> results_relayed{0};  // WorkerStatus.results_relayed
  std::atomic<uint64_t> results_direct{0};   // WorkerStatus.results_direct
  // Called with the seconds each step spent in the stage's runner (the
  // step-time metric); set before the service runs, or left empty.
  std::function<void(double seconds)> on_step_ran;
  // The coordinators' Results streams (used when this stage is last).
  ResultRoutes routes;
};

class StageService final : public tessera::v1::Stage::Service {
 public:
  // `state` must outlive the service.
  explicit StageService(WorkerState* state) : state_(state) {}

  grpc::Status Steps(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<tessera::v1::StepResult, tessera::v1::StepRequest>* stream) override;
  grpc::Status Results(grpc::ServerContext* context,
                       const tessera::v1::ResultsRequest* request,
                       grpc::ServerWriter<tessera::v1::StepResult>* writer) override;
  grpc::Status GetWorkerStatus(grpc::ServerContext* context,
                               const tessera::v1::WorkerStatusRequest* request,
                               tessera::v1::WorkerStatus* response) override;

 private:
  grpc::Status Refuse(const absl::Status& status, const char* rpc) const;

  WorkerState* state_;
};

// Decodes a StepRequest into executor input, checking everything that does
// not need the KV pool: the hidden tensor's dtype, shape and byte length
// against `n_embd` and the step's token count (it must be absent on the first
// stage), token ids present exactly on the first stage, sampling fields.
// INVALID_ARGUMENT naming the field. Exposed for tests.
absl::Status DecodeStep(const tessera::v1::StepRequest& request, bool first_stage, int n_embd,
                        std::vector<StageSequence>* seqs, std::vector<float>* hidden);

}  // namespace tessera

#endif  // TESSERA_WORKER_STAGE_SERVICE_H_
