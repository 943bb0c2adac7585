// The threads of a tensor-parallel group inside one process: N ranks that
// run the same function together, once per step. Rank 0 runs on the
// caller's thread; ranks 1..N-1 on threads the object owns for its
// lifetime (started by the constructor, stopped and joined by the
// destructor), so a step costs a wake-up, not a thread start.
//
// Used by TensorParallelRunner (CPU ranks) and CudaTensorParallelRunner
// (one GPU per rank).
//
// Thread-safety: one Run at a time (it is the step); the function runs
// concurrently on every rank and must synchronise whatever its ranks share.
#ifndef TESSERA_ENGINE_RANK_THREADS_H_
#define TESSERA_ENGINE_RANK_THREADS_H_

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace tessera {

class RankThreads {
 public:
  // `size` >= 1 ranks.
  explicit RankThreads(int size);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  int size() const { return size_; }
  // Calls fn(r) for every rank r, concurrently, and returns once every call
  // has returned.
  void Run(absl::FunctionRef<void(int)> fn);

 private:
  void Loop(int r);

  const int size_;
  absl::Mutex mu_;
  absl::CondVar work_ready_;
  absl::CondVar work_done_;
  // The step's function; valid while Run waits for the ranks.
  const absl::FunctionRef<void(int)>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t step_id_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Ranks 1..N-1; last member, so the destructor joins them before any
  // other member goes.
  std::vector<std::thread> threads_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_RANK_THREADS_H_
