// A fixed pool of worker threads for data-parallel kernels.
//
// ParallelFor splits [0, n) into contiguous ranges, one per participating
// thread (the caller runs one of them), and returns when all are done. Which
// thread computes which item never affects results: kernels assign whole
// output elements to a range and never split a reduction.
//
// Thread-safety: one ParallelFor at a time per pool (calls from several
// threads are serialised internally); the pool is owned by one engine.
#ifndef TESSERA_KERNELS_CPU_THREAD_POOL_H_
#define TESSERA_KERNELS_CPU_THREAD_POOL_H_

#include <cstdint>
#include <functional>
#include <memory>

namespace tessera::kernels {

class ThreadPool {
 public:
  // `threads` >= 1 is the total parallelism, including the calling thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;

  // Calls fn(begin, end) over a partition of [0, n) into at most size()
  // contiguous chunks whose sizes are multiples of `grain` (except the last).
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_CPU_THREAD_POOL_H_
