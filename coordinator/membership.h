// The coordinator's Control service: which workers are in the cluster, the
// replicas formed from them, and which replicas are ready.
//
// Lifecycle: a worker opens a Session and joins; the join is refused
// (FAILED_PRECONDITION naming both sides' values) for a different protocol
// version or model file, PERMISSION_DENIED for a wrong join secret. Joined
// workers wait idle until `min_workers` of them can form a replica: the
// planner splits the model over that group (in join order) and each is sent
// its StageAssignment, with the range identity the coordinator computed from
// its own copy of the file and the replica's epoch. A worker whose loaded
// range hashes differently is refused. When every stage of a replica reports
// ready for its epoch, on_ready is called with the replica's slot and its
// stage-0 and last-stage addresses. Up to `replicas` replicas form this way
// (0: as many as full groups of idle workers allow), each in the lowest free
// slot.
//
// Failure: when a worker is lost (stream error or missed heartbeats), or the
// router asks to Rebuild a replica whose pipeline failed, the replica is
// dissolved: on_lost(slot) is called, its surviving workers go idle, and the
// slot is formed again, with a new epoch, as soon as enough idle workers are
// there. Survivors are placed back at their old stage, so a worker whose
// range does not change keeps its loaded weights; a restarted or spare worker
// fills the gap.
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
#include "coordinator/serving_metrics.h"
#include "proto/node_security.h"
#include "tessera/v1/control.grpc.pb.h"
#include "tessera/v1/inference.pb.h"

namespace tessera {

struct MembershipOptions {
  // Workers (stages) per replica: a replica forms once this many are idle.
  int min_workers = 1;
  // Replicas to form at most; 0 = every full group of idle workers.
  int replicas = 1;
  PlanOptions plan;
  // How workers are authenticated (certificate, join secret); must outlive
  // the membership.
  const NodeSecurity* security = nullptr;
  // Accept workers whose kernels compute different bits from the first
  // worker's (another device type or CPU kernel path). Off: they are
  // refused, since a request could not move between their replicas with
  // the same tokens.
  bool mixed_numerics = false;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A worker silent for this long is presumed dead.
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Called with the replica's slot and epoch, its stage-0 and last-stage
  // addresses and the KV blocks per stage once every stage of it is loaded
  // and verified.
  std::function<void(int slot, uint64_t epoch, const std::string& stage0,
                     const std::string& last_stage, int64_t kv_blocks, int stages)>
      on_ready;
  // Caps the planned KV pool per stage (0 = as planned), e.g. to test
  // preemption with a deliberately small pool.
  int64_t max_kv_blocks = 0;
  // Called with the slot and the reason when a ready replica is dissolved
  // (it lost a worker, or was rebuilt).
  std::function<void(int slot, const std::string& reason)> on_lost;
  // Called when a worker of replica `slot` leaves (SIGTERM) and no other
  // replica is ready to take its requests: stop sending the replica new
  // ones and return once its running ones ended or `timeout` passed.
  std::function<void(int slot, absl::Duration timeout)> drain_replica;
  absl::Duration drain_timeout = absl::Seconds(30);
  // Counts joins and losses; null: none. Must outlive the membership.
  ServingMetrics* metrics = nullptr;
};

// One worker as `tessera status` and the metrics see it.
struct WorkerView {
  std::string id;       // "worker-3"
  std::string address;  // its Stage service
  std::string device;   // "cpu" or "cuda"
  std::string isa;      // CPU kernel path
  int device_count = 1;
  int tensor_parallel = 1;
  int replica = -1;  // -1: idle
  int stage = -1;
  int layer_begin = 0;
  int layer_end = 0;
  uint64_t weight_bytes = 0;
  // "idle", "loading" (assigned, not yet ready), "serving", or "excluded"
  // (found stuck in a step; being removed).
  std::string state;
  absl::Duration heartbeat_age;  // since its last message
  absl::Duration busy_for;       // in its current step (0: idle)
};

class Membership final : public tessera::v1::Control::Service {
 public:
  // `file` and `footprint` must outlive the service.
  Membership(const GgufFile* file, const ModelFootprint* footprint, MembershipOptions options);
  ~Membership() override;

  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<tessera::v1::CoordinatorMessage,
                                                tessera::v1::WorkerMessage>* stream) override;

  // The stages of every formed replica, for GetModelInfo.
  void DescribeStages(tessera::v1::ModelInfo* info) const;
  // Whether any replica is ready.
  bool ready() const;
  // Dissolves replica `slot` if it still has `epoch` and forms it again with
  // a new epoch: what the router asks when the replica's pipeline failed
  // (a broken stream, a step past its deadline) while its workers may still
  // answer heartbeats.
  void Rebuild(int slot, uint64_t epoch, const std::string& reason);
  // Why there is no ready pipeline (e.g. the planner's message), or "".
  std::string not_ready_reason() const;
  // Every joined worker, in join order.
  std::vector<WorkerView> Workers() const;

 private:
  struct Worker;
  using Stream =
      grpc::ServerReaderWriter<tessera::v1::CoordinatorMessage, tessera::v1::WorkerMessage>;

  grpc::Status CheckJoin(grpc::ServerContext* context,
                         const tessera::v1::JoinRequest& join) const;
  struct Replica {
    std::vector<std::shared_ptr<Worker>> stages;  // empty: not formed
    uint64_t epoch = 0;
    int64_t kv_blocks = 0;
    bool ready = false;
  };

  // Forms replicas from idle workers while the options allow.
  void MaybePlan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Plans and assigns replica `slot` over `group`; false (with the reason
  // set) when the planner refuses.
  bool Form(int slot, std::vector<std::shared_ptr<Worker>> group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The idle workers for `slot`: its old workers at their old stages, the
  // others in join order; fewer than min_workers when it cannot form.
  std::vector<std::shared_ptr<Worker>> GroupFor(int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes replica `slot` apart; true when it was ready (on_lost is due).
  bool Dissolve(int slot, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Worker* w, const std::string& why);
  // Calls on_lost for `slot` if `was_ready`, then forms what can be formed.
  void AfterDissolve(int slot, bool was_ready, const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);
  void Monitor();

  const GgufFile* file_;
  const ModelFootprint* footprint_;
  const MembershipOptions options_;
  const uint64_t header_hash_;

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);  // join order
  int next_worker_ ABSL_GUARDED_BY(mu_) = 1;
  // The numerics of the first worker that joined ("cpu, avx512 kernels").
  std::string numerics_ ABSL_GUARDED_BY(mu_);
  std::vector<Replica> replicas_ ABSL_GUARDED_BY(mu_);  // by slot
  // Epochs start at the start time in microseconds, so a restarted
  // coordinator never reuses one a worker may still hold.
  uint64_t next_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::string not_ready_reason_ ABSL_GUARDED_BY(mu_) = "waiting for workers to join";

  absl::Notification stop_;
  std::thread monitor_;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MEMBERSHIP_H_
