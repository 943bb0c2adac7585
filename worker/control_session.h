// The worker's side of the control protocol: join the coordinator, heartbeat,
// load whatever stage it assigns (reporting progress), report readiness.
//
// A refused join (wrong protocol version, model file or join secret) ends
// Run() with the coordinator's FAILED_PRECONDITION / PERMISSION_DENIED status
// so the process can exit with the message. Any other loss of the
// coordinator (stream error, missed heartbeats) is retried: the worker
// rejoins, after 1 s and then twice as long each time up to 8 s, and keeps
// serving its loaded stage if it is assigned the same one.
//
// Leave() (on SIGTERM) tells the coordinator the worker is going; the
// coordinator moves or finishes the replica's requests and ends the
// session, and Run() then returns OK.
//
// Thread-safety: Run() is called once, from the main thread; it owns the
// session stream, and a heartbeat thread shares the stream's write side
// under a mutex. Leave() may be called from any thread.
#ifndef TESSERA_WORKER_CONTROL_SESSION_H_
#define TESSERA_WORKER_CONTROL_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/gguf/gguf_file.h"
#include "common/host_probe.h"
#include "common/model_config.h"
#include "engine/step_runner_factory.h"
#include "tessera/v1/control.grpc.pb.h"
#include "worker/stage_service.h"

namespace tessera {

struct WorkerOptions {
  // host:port of the coordinator's gRPC server.
  std::string coordinator_address;
  // host:port other stages and the coordinator use to reach this worker.
  std::string advertise_address;
  // Kernel threads for the stage (including the stream's thread). >= 1.
  int threads = 1;
  // Tensor-parallel degree of every stage this worker loads; its threads are
  // shared out among the ranks. >= 1.
  int tp = 1;
  // Where every stage this worker loads runs (checked at start).
  Device device;
  // Memory the worker offers for weights + KV + activations; 0 = what the
  // host reports free.
  uint64_t memory_limit_bytes = 0;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // The coordinator is presumed gone after this long without a heartbeat.
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Called with SERVING=true once a stage is loaded, false when it is lost.
  std::function<void(bool serving)> on_serving;
};

class ControlSession {
 public:
  // `file`, `config` and `state` must outlive the session.
  ControlSession(const GgufFile* file, const ModelConfig* config, HostDevices devices,
                 WorkerOptions options, WorkerState* state);

  // Joins and serves until the coordinator refuses this worker, or lets it
  // go after Leave (OK).
  absl::Status Run();

  // Asks the coordinator to let this worker go.
  void Leave(const std::string& reason);

 private:
  // One connection: join, then handle messages until the stream ends.
  grpc::Status RunOnce();
  // Loads an assignment into state_ (or keeps the current stage if it is the
  // same), writing progress and the ready/failed message to the stream.
  void Load(const tessera::v1::StageAssignment& assignment,
            const std::function<void(const tessera::v1::WorkerMessage&)>& send);

  const GgufFile* file_;
  const ModelConfig* config_;
  HostDevices devices_;
  WorkerOptions options_;
  WorkerState* state_;
  // The assignment currently loaded (stage_index = -1 when none).
  tessera::v1::StageAssignment loaded_;

  absl::Mutex leave_mu_;
  bool leaving_ ABSL_GUARDED_BY(leave_mu_) = false;
  std::string leave_reason_ ABSL_GUARDED_BY(leave_mu_);
  // Writes to the current session's stream; empty between sessions.
  std::function<void(const tessera::v1::WorkerMessage&)> send_ ABSL_GUARDED_BY(leave_mu_);
};

// Bytes of the file at `path` that this process has mapped in (the Rss of
// its mappings in /proc/self/smaps): how much of the model a worker really
// touched. 0 if unreadable.
uint64_t ResidentBytesOfFile(const std::string& path);

}  // namespace tessera

#endif  // TESSERA_WORKER_CONTROL_SESSION_H_
