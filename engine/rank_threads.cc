#include "engine/rank_threads.h"

namespace tessera {

RankThreads::RankThreads(int size) : size_(size) {
  for (int r = 1; r < size_; ++r) threads_.emplace_back([this, r] { Loop(r); });
}

RankThreads::~RankThreads() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    work_ready_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
}

void RankThreads::Loop(int r) {
  uint64_t done_id = 0;
  while (true) {
    const absl::FunctionRef<void(int)>* fn = nullptr;
    {
      absl::MutexLock lock(&mu_);
      while (!stop_ && step_id_ == done_id) work_ready_.Wait(&mu_);
      if (stop_) return;
      done_id = step_id_;
      fn = fn_;
    }
    (*fn)(r);
    absl::MutexLock lock(&mu_);
    if (--pending_ == 0) work_done_.Signal();
  }
}

void RankThreads::Run(absl::FunctionRef<void(int)> fn) {
  {
    absl::MutexLock lock(&mu_);
    fn_ = &fn;
    ++step_id_;
    pending_ = size_ - 1;
    work_ready_.SignalAll();
  }
  fn(0);
  absl::MutexLock lock(&mu_);
  while (pending_ > 0) work_done_.Wait(&mu_);
  fn_ = nullptr;
}

}  // namespace tessera
