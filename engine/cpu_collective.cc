#include "engine/cpu_collective.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace tessera {

class CpuCollectiveGroup::Rank : public Collective {
 public:
  Rank(CpuCollectiveGroup* group, int rank) : g_(group), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return g_->size_; }

  absl::Status AllReduceSum(float* data, int64_t n) override {
    RETURN_IF_ERROR(CheckCount("AllReduceSum", n));
    const int size = g_->size_;
    if (size == 1) return absl::OkStatus();
    // Rank r owns elements [ChunkBegin(r), ChunkBegin(r + 1)).
    auto chunk_begin = [n, size](int r) { return n * r / size; };
    const int64_t begin = chunk_begin(rank_), end = chunk_begin(rank_ + 1);
    g_->published_[rank_] = data;
    g_->counts_[rank_] = n;
    g_->chunks_[rank_].resize(end - begin);
    RETURN_IF_ERROR(g_->Arrive());
    RETURN_IF_ERROR(CheckCountsAgree("AllReduceSum"));
    float* sum = g_->chunks_[rank_].data();
    std::memcpy(sum, g_->published_[0] + begin, (end - begin) * sizeof(float));
    for (int r = 1; r < size; ++r) {
      const float* src = g_->published_[r] + begin;
      for (int64_t i = 0; i < end - begin; ++i) sum[i] += src[i];
    }
    RETURN_IF_ERROR(g_->Arrive());
    for (int r = 0; r < size; ++r) {
      const int64_t b = chunk_begin(r);
      std::memcpy(data + b, g_->chunks_[r].data(), (chunk_begin(r + 1) - b) * sizeof(float));
    }
    // Nobody may start the next call (and resize its chunk) while a peer copies.
    return g_->Arrive();
  }

  absl::Status AllGather(const float* in, int64_t n_per_rank, float* out) override {
    RETURN_IF_ERROR(CheckCount("AllGather", n_per_rank));
    g_->published_[rank_] = in;
    g_->counts_[rank_] = n_per_rank;
    RETURN_IF_ERROR(g_->Arrive());
    RETURN_IF_ERROR(CheckCountsAgree("AllGather"));
    for (int r = 0; r < g_->size_; ++r) {
      std::memcpy(out + r * n_per_rank, g_->published_[r], n_per_rank * sizeof(float));
    }
    return g_->Arrive();
  }

  absl::Status Broadcast(float* data, int64_t n, int root) override {
    RETURN_IF_ERROR(CheckCount("Broadcast", n));
    if (root < 0 || root >= g_->size_) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Broadcast: root %d outside the group of %d ranks", root, g_->size_));
    }
    g_->published_[rank_] = data;
    g_->counts_[rank_] = n;
    RETURN_IF_ERROR(g_->Arrive());
    RETURN_IF_ERROR(CheckCountsAgree("Broadcast"));
    if (rank_ != root) std::memcpy(data, g_->published_[root], n * sizeof(float));
    return g_->Arrive();
  }

  absl::Status Barrier() override { return g_->Arrive(); }

 private:
  absl::Status CheckCount(const char* op, int64_t n) const {
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s on rank %d: negative element count %d", op, rank_, n));
    }
    return absl::OkStatus();
  }
  // Every rank sees the same counts, so every rank returns the same error.
  absl::Status CheckCountsAgree(const char* op) const {
    for (int r = 1; r < g_->size_; ++r) {
      if (g_->counts_[r] != g_->counts_[0]) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: rank 0 passed %d elements but rank %d passed %d", op, g_->counts_[0], r,
            g_->counts_[r]));
      }
    }
    return absl::OkStatus();
  }

  CpuCollectiveGroup* const g_;
  const int rank_;
};

CpuCollectiveGroup::CpuCollectiveGroup(int size)
    : size_(std::max(size, 1)), published_(size_), counts_(size_), chunks_(size_) {
  for (int r = 0; r < size_; ++r) ranks_.push_back(std::make_unique<Rank>(this, r));
}

CpuCollectiveGroup::~CpuCollectiveGroup() = default;

Collective* CpuCollectiveGroup::rank(int r) {
  return r >= 0 && r < size_ ? ranks_[r].get() : nullptr;
}

void CpuCollectiveGroup::Abort(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  if (!aborted_) abort_reason_ = std::string(reason);
  aborted_ = true;
  all_arrived_.SignalAll();
}

void CpuCollectiveGroup::Reset() {
  absl::MutexLock lock(&mu_);
  aborted_ = false;
  abort_reason_.clear();
  arrived_ = 0;
  ++generation_;
  released_.store(generation_, std::memory_order_release);
}

absl::Status CpuCollectiveGroup::Arrive() {
  auto cancelled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::CancelledError(
        absl::StrCat("tensor-parallel group aborted: ", abort_reason_));
  };
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return cancelled();
    generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      released_.store(generation_, std::memory_order_release);
      all_arrived_.SignalAll();
      return absl::OkStatus();
    }
  }
  // Bounded spin (an abort is noticed under the lock below, at worst after
  // the budget); then sleep. Taking the lock afterwards also orders the
  // peers' published data before our reads.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  while (released_.load(std::memory_order_acquire) == generation &&
         std::chrono::steady_clock::now() < deadline) {
  }
  absl::MutexLock lock(&mu_);
  while (generation_ == generation && !aborted_) all_arrived_.Wait(&mu_);
  if (generation_ == generation) return cancelled();
  return absl::OkStatus();
}

}  // namespace tessera
