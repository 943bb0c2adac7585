// Internal to coordinator/membership*.cc: what the membership keeps about
// one joined worker (its session stream, liveness, and where it serves).
//
// Thread-safety: the liveness fields are guarded by write_mu (the session
// thread and the monitor write them); the placement fields by the
// Membership's mu_.
#ifndef TESSERA_COORDINATOR_MEMBERSHIP_WORKER_H_
#define TESSERA_COORDINATOR_MEMBERSHIP_WORKER_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/membership.h"

namespace tessera {

struct Membership::Worker {
  std::string id;
  std::string address;
  std::string cert_name;  // its certificate's Common Name with TLS; empty without
  tessera::v1::DeviceInfo devices;
  grpc::ServerContext* context = nullptr;
  Stream* stream = nullptr;

  absl::Mutex write_mu;
  bool gone ABSL_GUARDED_BY(write_mu) = false;
  absl::Time last_seen ABSL_GUARDED_BY(write_mu);
  // Set when the monitor drops it (missed heartbeats).
  std::string dropped_because ABSL_GUARDED_BY(write_mu);
  // From its heartbeats: when the step it is running began (0: idle).
  int64_t busy_since_unix_micros ABSL_GUARDED_BY(write_mu) = 0;

  // Guarded by Membership::mu_.
  int replica = -1;  // -1: idle
  int stage = -1;
  // Where it served before its replica was dissolved (kept back there).
  int last_replica = -1;
  int last_stage = -1;
  // The range it still held when it joined (loaded_end 0: none).
  int loaded_begin = 0;
  int loaded_end = 0;
  // Found stuck in one step: never placed in a replica again; its session
  // is being ended.
  bool excluded = false;
  tessera::v1::StageAssignment assignment;
  bool ready = false;
  uint64_t weight_bytes = 0;

  bool Send(const tessera::v1::CoordinatorMessage& m) {
    absl::MutexLock lock(&write_mu);
    return !gone && stream->Write(m);
  }
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MEMBERSHIP_WORKER_H_
