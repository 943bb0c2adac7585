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
// Failure: once a rank cannot go on (a failed launch, a bad step on one
// rank only) it calls Abort(), which makes every rank's pending and later
// operations fail or return instead of waiting for a peer that will never
// arrive. An aborted group is not reused: its owner is rebuilt.
//
// Thread-safety: each rank's object is used by one thread at a time; Abort
// may be called from any thread. A DeviceCollectiveGroup owns the ranks and
// must outlive their use.
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
  // Fails or releases every rank's pending and later operations (the whole
  // group's, not only this rank's). Idempotent.
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
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_DEVICE_COLLECTIVE_H_
