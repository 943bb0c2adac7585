// ParallelFor publishes a job of at most size() fixed chunks; every
// participant, the caller included, claims chunks from a shared counter until
// none are left. The partition is fixed by (n, grain, size()) alone, so results
// never depend on which thread ran a chunk; claiming (instead of binding chunk
// i to worker i) means that on an oversubscribed machine the caller simply
// runs the chunks of a worker that has not been scheduled yet, rather than
// waiting a whole time slice for it.
//
// Workers spin briefly before sleeping: a forward pass issues kernels tens of
// microseconds apart, and a condition-variable wake-up costs about as much as a
// small GEMV. The spin is bounded so idle pools do not burn a shared core.
#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera::kernels {
namespace {

constexpr std::chrono::microseconds kSpinBudget(100);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or the budget runs out; returns pred()'s last value.
template <typename Pred>
bool SpinUntil(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    CpuRelax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}

// The claim word: job id (32 bits) | chunk count (16) | next unclaimed (16).
// Packing them makes a claim self-consistent: a thread that still holds an old
// job id can only succeed against the job it actually sees.
constexpr uint64_t PackClaim(uint32_t job, uint32_t chunks, uint32_t next) {
  return (uint64_t{job} << 32) | (uint64_t{chunks} << 16) | next;
}
constexpr uint32_t ClaimChunks(uint64_t v) { return (v >> 16) & 0xFFFF; }
constexpr uint32_t ClaimNext(uint64_t v) { return v & 0xFFFF; }

constexpr int kMaxThreads = 0xFFFF;

}  // namespace

struct ThreadPool::State {
  explicit State(int n) : size(n), ranges(n) {}

  const int size;
  std::mutex call_mu;  // serialises ParallelFor calls

  std::mutex mu;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::atomic<uint32_t> job{0};
  std::atomic<uint64_t> claim{0};
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};

  // Written by the caller before `claim` is published (release); read only by
  // a thread that has claimed a chunk of that job (acquire).
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  std::vector<std::pair<int64_t, int64_t>> ranges;

  std::vector<std::thread> workers;

  // Runs chunks of the current job until none are unclaimed.
  void RunClaims() {
    for (;;) {
      uint64_t v = claim.load(std::memory_order_acquire);
      do {
        if (ClaimNext(v) >= ClaimChunks(v)) return;
      } while (!claim.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire));
      const auto [begin, end] = ranges[ClaimNext(v)];
      (*fn)(begin, end);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(ClaimChunks(v))) {
        std::lock_guard<std::mutex> lock(mu);
        done_cv.notify_all();
      }
    }
  }

  void WorkerLoop() {
    uint32_t seen = 0;
    auto ready = [&] {
      return job.load(std::memory_order_acquire) != seen || stop.load(std::memory_order_acquire);
    };
    for (;;) {
      if (!SpinUntil(ready)) {
        std::unique_lock<std::mutex> lock(mu);
        work_cv.wait(lock, ready);
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = job.load(std::memory_order_acquire);
      RunClaims();
    }
  }
};

ThreadPool::ThreadPool(int threads)
    : state_(std::make_unique<State>(std::clamp(threads, 1, kMaxThreads))) {
  for (int i = 1; i < state_->size; ++i) {
    state_->workers.emplace_back([s = state_.get()] { s->WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop.store(true, std::memory_order_release);
  }
  state_->work_cv.notify_all();
  for (auto& t : state_->workers) t.join();
}

int ThreadPool::size() const { return state_->size; }

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t chunks = std::min<int64_t>(state_->size, grains);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(state_->call_mu);
  State& s = *state_;
  const int64_t base = grains / chunks;
  const int64_t extra = grains % chunks;
  int64_t next = 0;
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t end = std::min(n, next + (base + (i < extra ? 1 : 0)) * grain);
    s.ranges[i] = {next, end};
    next = end;
  }
  s.fn = &fn;
  s.done.store(0, std::memory_order_relaxed);
  const uint32_t job = s.job.load(std::memory_order_relaxed) + 1;
  s.claim.store(PackClaim(job, static_cast<uint32_t>(chunks), 0), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.job.store(job, std::memory_order_release);
  }
  s.work_cv.notify_all();

  s.RunClaims();

  auto finished = [&] { return s.done.load(std::memory_order_acquire) == chunks; };
  if (!SpinUntil(finished)) {
    std::unique_lock<std::mutex> lock(s.mu);
    s.done_cv.wait(lock, finished);
  }
  s.fn = nullptr;
}

}  // namespace tessera::kernels
