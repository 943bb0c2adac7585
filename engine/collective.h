// Collective operations among the ranks of one tensor-parallel group.
//
// Tensor parallelism splits each layer's work across ranks and joins the
// partial results with these operations. Every rank of a group calls the same
// operations in the same order with the same sizes; a call returns once every
// rank has reached it (each is a synchronisation point).
//
// Numerics contract: AllReduceSum adds the ranks' contributions in rank order
// 0, 1, ..., N-1 for every element, so all ranks receive bitwise the same
// result whatever the thread timing, and reruns are bitwise repeatable.
//
// Thread-safety: one Collective belongs to one rank and is used by one thread
// at a time; the ranks of a group call concurrently, each on its own object.
// Errors: CANCELLED once the group has been aborted (a peer failed), so no
// rank blocks forever on a peer that will never arrive; INVALID_ARGUMENT for
// bad arguments (a root outside the group, a negative count).
#ifndef TESSERA_ENGINE_COLLECTIVE_H_
#define TESSERA_ENGINE_COLLECTIVE_H_

#include <cstdint>

#include "absl/status/status.h"

namespace tessera {

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // data[0..n) := sum over ranks r = 0..size()-1 (in that order) of rank r's data.
  virtual absl::Status AllReduceSum(float* data, int64_t n) = 0;
  // out[r * n_per_rank + i] := rank r's in[i]; `out` holds size() * n_per_rank
  // floats on every rank and must not overlap `in`.
  virtual absl::Status AllGather(const float* in, int64_t n_per_rank, float* out) = 0;
  // data[0..n) := rank `root`'s data on every rank.
  virtual absl::Status Broadcast(float* data, int64_t n, int root) = 0;
  // Returns once every rank has called Barrier.
  virtual absl::Status Barrier() = 0;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_COLLECTIVE_H_
