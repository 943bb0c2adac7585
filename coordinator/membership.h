// The coordinator's Control service: which workers are in the cluster, the
// plan over them, and whether a whole pipeline is ready.
//
// Lifecycle: a worker opens a Session and joins; the join is refused
// (FAILED_PRECONDITION naming both sides' values) for a different protocol
// version or model file, PERMISSION_DENIED for a wrong join secret. Once
// min_workers have joined, the planner splits the model over them (in join
// order) and each is sent its StageAssignment, including the range identity
// the coordinator computed from its own copy of the file. A worker whose
// loaded range hashes differently is refused. When every stage reports
// ready, on_ready is called with the stage-0 and last-stage addresses; when a
// stage's worker is lost (stream error or missed heartbeats), on_lost is called and the
// cluster re-plans once enough workers are present again.
//
// Thread-safety: Session runs on gRPC threads (one per worker); a monitor
// thread sends heartbeats and checks liveness; all shared state is guarded
// by mu_. The callbacks are called without mu_ held.
#ifndef TESSERA_COORDINATOR_MEMBERSHIP_H_
#define TESSERA_COORDINATOR_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/gguf/gguf_file.h"
#include "coordinator/model_footprint.h"
#include "coordinator/planner.h"
#include "tessera/v1/control.grpc.pb.h"
#include "tessera/v1/inference.pb.h"

namespace tessera {

struct MembershipOptions {
  // Workers to wait for before planning; the plan uses every joined worker.
  int min_workers = 1;
  PlanOptions plan;
  std::string join_secret;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A worker silent for this long is presumed dead.
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Called with the stage-0 address and the KV blocks per stage once every
  // stage is loaded and verified.
  std::function<void(const std::string& stage0, const std::string& last_stage,
                     int64_t kv_blocks, int stages)>
      on_ready;
  // Caps the planned KV pool per stage (0 = as planned), e.g. to test
  // preemption with a deliberately small pool.
  int64_t max_kv_blocks = 0;
  // Called with the reason when a ready pipeline loses a stage.
  std::function<void(const std::string& reason)> on_lost;
};

class Membership final : public tessera::v1::Control::Service {
 public:
  // `file` and `footprint` must outlive the service.
  Membership(const GgufFile* file, const ModelFootprint* footprint, MembershipOptions options);
  ~Membership() override;

  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<tessera::v1::CoordinatorMessage,
                                                tessera::v1::WorkerMessage>* stream) override;

  // The stages of the current plan, for GetModelInfo.
  void DescribeStages(tessera::v1::ModelInfo* info) const;
  bool ready() const;
  // Why there is no ready pipeline (e.g. the planner's message), or "".
  std::string not_ready_reason() const;

 private:
  struct Worker;
  using Stream =
      grpc::ServerReaderWriter<tessera::v1::CoordinatorMessage, tessera::v1::WorkerMessage>;

  grpc::Status CheckJoin(const tessera::v1::JoinRequest& join) const;
  // Plans over the live workers and sends assignments if none is active.
  void MaybePlan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Worker* w, const std::string& why);
  void Monitor();

  const GgufFile* file_;
  const ModelFootprint* footprint_;
  const MembershipOptions options_;
  const uint64_t header_hash_;

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);  // join order
  int next_worker_ ABSL_GUARDED_BY(mu_) = 1;
  // The active plan: the workers of each stage, in order (empty = none).
  std::vector<std::shared_ptr<Worker>> stages_ ABSL_GUARDED_BY(mu_);
  int64_t kv_blocks_ ABSL_GUARDED_BY(mu_) = 0;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::string not_ready_reason_ ABSL_GUARDED_BY(mu_) = "waiting for workers to join";

  absl::Notification stop_;
  std::thread monitor_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MEMBERSHIP_H_
