// Collective operations among the GPUs of one tensor-parallel group, on
// device memory and stream-ordered: the device twin of engine/collective.h.
//
// Each rank of a group (one GPU each, driven by its own thread) calls the
// same operations in the same order with the same sizes; a call only
// enqueues the operation on the rank's stream (it completes when the stream
// reaches it), except where an implementation says it synchronises.
//
// Numerics: every rank receives bitwise the same sum. Implementations say
// in which order they add; for two ranks every order gives the same bits
// (float addition is commutative), for more they may differ from rank order
// in the last bits.
//
// Waiting and failure: a rank's thread waits for its stream with Wait(),
// never with cudaStreamSynchronize, because the stream's collectives wait on
// the other GPUs. Once a rank cannot go on (a failed launch, a CUDA error)
// its thread calls Abort(), a host-side flag: every rank's Wait and later
// calls then return CANCELLED instead of waiting for a peer that will never
// arrive. The GPUs may still hold kernels waiting on each other; when no
// rank is inside a call any more (the step is over) and every CUDA graph
// holding the group's operations has been destroyed, the owner calls
// DeviceCollectiveGroup::Release(), which ends them (ncclCommAbort). An
// aborted group is not reused: its owner is rebuilt.
//
// Thread-safety: each rank's object is used by one thread at a time; Abort
// may be called from any thread. A DeviceCollectiveGroup owns the ranks and
// must outlive their use; Release only while no rank is inside a call.
#ifndef TESSERA_ENGINE_CUDA_DEVICE_COLLECTIVE_H_
#define TESSERA_ENGINE_CUDA_DEVICE_COLLECTIVE_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace tessera {

class DeviceCollective {
 public:
  virtual ~DeviceCollective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "nccl", "host-staged": for logs and device strings.
  virtual std::string name() const = 0;
  // Whether the operations may be captured into a CUDA graph (they enqueue
  // only device work, no host synchronisation).
  virtual bool capturable() const = 0;

  // data[0..n) := the sum over ranks of every rank's data[0..n) (device
  // memory of this rank's GPU).
  virtual absl::Status AllReduceSum(float* data, int64_t n, cudaStream_t stream) = 0;
  // out[r * n_per_rank + i] := rank r's in[i]; `out` holds size() *
  // n_per_rank floats and must not overlap `in`.
  virtual absl::Status AllGather(const float* in, int64_t n_per_rank, float* out,
                                 cudaStream_t stream) = 0;
  // Waits until `stream` has done what is enqueued on it so far: OK; the
  // launch error; CANCELLED once the group is aborted; INTERNAL when the
  // collective failed asynchronously (NCCL's own error).
  virtual absl::Status Wait(cudaStream_t stream) = 0;
  // Marks the whole group aborted (see above). Idempotent.
  virtual void Abort() = 0;
};

// A group's ranks, owned together: NCCL communicators (nccl_collective.h)
// or the host-staged group (host_staged_collective.h).
class DeviceCollectiveGroup {
 public:
  virtual ~DeviceCollectiveGroup() = default;
  virtual int size() const = 0;
  // Rank r's endpoint, owned by the group; 0 <= r < size().
  virtual DeviceCollective* rank(int r) = 0;
  // DeviceCollective::Abort for the whole group.
  virtual void Abort() = 0;
  virtual bool aborted() const = 0;
  // After an abort: ends whatever the group left waiting on the GPUs. Only
  // when no rank is inside a call and no CUDA graph holds the group's
  // operations. Idempotent; a no-op before an abort.
  virtual void Release() = 0;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_DEVICE_COLLECTIVE_H_
