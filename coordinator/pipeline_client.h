// The coordinator's end of a pipeline, and the StepSink the scheduler sends
// its steps to: one long-lived Stage.Steps stream to stage 0, which steps go
// down, and one Stage.Results stream from the last stage, which their
// results come back on, matched to their step by id: S + 1 messages per step
// on S stages. Errors (a stage refusing a step, a link breaking) come back
// up the Steps stream. Several steps may be in flight at once: that is what
// keeps every stage of a pipeline busy.
//
// This is the one place where the scheduler's plain StepPlan / StepOutcome
// meet the tessera.v1 wire messages.
//
// Each step's completion callback runs exactly once: with its result, with
// the step's own error (a result carrying a non-OK code), or with
// UNAVAILABLE when either stream breaks (or the Results stream does not open
// within 10 s). Deadlines are the caller's business (the scheduler fails a
// step that takes too long).
//
// Thread-safety: every method may be called from any thread. Callbacks run on
// a reader thread (or on the caller's thread when sending fails) with no
// lock of this class held.
#ifndef TESSERA_COORDINATOR_PIPELINE_CLIENT_H_
#define TESSERA_COORDINATOR_PIPELINE_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/serving_metrics.h"
#include "coordinator/step_sink.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/inference.pb.h"
#include "proto/node_security.h"
#include "tessera/v1/stage.grpc.pb.h"

namespace tessera {

class PipelineClient final : public StepSink {
 public:
  using StepCallback = std::function<void(absl::StatusOr<tessera::v1::StepResult>)>;

  // Opens the stream to `stage0_address`; the connection itself is made
  // lazily by gRPC, so failures show up in the first step. Every step and
  // release carries `epoch`, the replica epoch the stages were assigned.
  // `security` (which must outlive the client) gives the channels' TLS
  // credentials and the proofs stage 0 and the last stage check.
  // `metrics` (optional; must outlive the client) gets every answered
  // step's round trip and each stage's report, labelled `replica`.
  PipelineClient(const NodeSecurity* security, std::string stage0_address,
                 std::string last_stage_address, uint64_t epoch, int stages,
                 ServingMetrics* metrics = nullptr, int replica = 0);
  // Fails every step still in flight with UNAVAILABLE.
  ~PipelineClient() override;
  PipelineClient(const PipelineClient&) = delete;
  PipelineClient& operator=(const PipelineClient&) = delete;

  // StepSink: converts the plan, sends it, converts the result.
  void Send(StepPlan plan, Done done) override;
  // Fire-and-forget release of finished sequences on every stage.
  void Release(const std::vector<int64_t>& seq_ids) override;
  // Timing of the steps answered so far.
  PipelineTiming timing() const override;

 private:
  // Sends `request` (its step_id and results session are set here) and
  // arranges for `done` to be called once with its outcome.
  void SendStep(tessera::v1::StepRequest request, StepCallback done);
  struct Pending {
    StepCallback done;
    absl::Time sent;
    uint64_t tokens = 0;
  };

  // Reader threads: errors from stage 0; results from the last stage.
  void ReadSteps();
  void ReadResults();
  // Completes the step `result` answers, if it is still pending.
  void Complete(tessera::v1::StepResult result) ABSL_LOCKS_EXCLUDED(mu_);
  void Record(const tessera::v1::StepResult& result, const Pending& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the stream broken and fails every pending step.
  void Break(const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string address_;       // stage 0
  const std::string last_address_;  // the last stage
  const uint64_t session_;          // names our Results stream on the last stage
  const uint64_t epoch_;
  const int stages_;  // for messages; 0 = unknown
  ServingMetrics* const metrics_;
  const int replica_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<tessera::v1::StepRequest, tessera::v1::StepResult>>
      stream_;
  grpc::ClientContext results_context_;
  std::unique_ptr<grpc::ClientReader<tessera::v1::StepResult>> results_;
  std::thread steps_reader_;
  std::thread results_reader_;

  mutable absl::Mutex mu_;
  uint64_t next_step_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool results_open_ ABSL_GUARDED_BY(mu_) = false;  // the last stage acknowledged
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_message_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  PipelineTiming timing_ ABSL_GUARDED_BY(mu_);
  // The stages' compute intervals of the last steps answered, to count
  // steps that overlapped another on a different stage.
  struct Busy {
    uint64_t step_id;
    int32_t stage_index;
    int64_t begin, end;  // unix micros
  };
  std::deque<Busy> recent_ ABSL_GUARDED_BY(mu_);
  // Serialises writes: gRPC allows one outstanding Write per stream.
  absl::Mutex write_mu_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_PIPELINE_CLIENT_H_
