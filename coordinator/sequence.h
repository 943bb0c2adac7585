// One request as the scheduler runs it: its history, its KV blocks on the
// replica that runs it, and the stream its tokens go to.
//
// A sequence can move between schedulers (replica failover,
// coordinator/router.h): it then keeps its spec, history, generated count
// and stream, and loses everything that belonged to the old replica (its
// seq_id, blocks, computed positions). Its next token is sampled from the
// same rng counter (`generated`) over the same history, so it comes out the
// same on a replica with the same numerics.
//
// Thread-safety: owned by one scheduler at a time and touched only under
// that scheduler's lock.
#ifndef TESSERA_COORDINATOR_SEQUENCE_H_
#define TESSERA_COORDINATOR_SEQUENCE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/request_spec.h"
#include "coordinator/request_stream.h"

namespace tessera {

struct Sequence {
  int64_t seq_id = 0;        // as the workers know it; new after a preemption or a move
  uint64_t arrival = 0;      // order of Submit (process-wide): older sequences win blocks
  RequestSpec spec;
  std::shared_ptr<RequestStream> stream;
  std::vector<int32_t> blocks;
  std::vector<int32_t> history;  // prompt + generated
  int32_t computed = 0;          // leading history positions whose KV exists
  int64_t registered = 0;        // leading blocks offered to the prefix cache
  bool prefix_cached = false;    // next step starts past reused cached blocks
  int32_t generated = 0;
  int32_t migrations = 0;        // replicas it was moved to after a failure
  bool in_flight = false;
  bool in_step = false;          // taken by the step being built
  bool done = false;             // finished; dropped once not in flight
  // For the latency metrics: when Submit took it, whether a replica has
  // admitted it yet, and when its last token went out.
  absl::Time submitted;
  bool scheduled = false;
  absl::Time last_token;

  // Forgets everything the replica held for it: it must be computed again
  // from position 0 (prompt + the tokens it already produced).
  void ForgetReplicaState() {
    seq_id = 0;
    blocks.clear();
    computed = 0;
    registered = 0;
    prefix_cached = false;
    in_flight = false;
    in_step = false;
  }
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_SEQUENCE_H_
