// Collectives among the threads of one process, over shared memory.
//
// A CpuCollectiveGroup of N ranks hands out one Collective per rank; the N
// ranks run on N threads of the same process (a tensor-parallel group inside
// one worker). Data never moves through the group: a rank publishes a pointer
// to its buffer, everyone passes a barrier, and peers read that buffer
// directly. Barriers separate the phases, so a buffer is never read while its
// owner may still write it.
//
// AllReduceSum splits the elements into N chunks; rank r adds chunk r over
// ranks 0..N-1 in that order into the group's scratch, and then every rank
// copies every chunk back. Each element is therefore summed in rank order by
// exactly one thread, and all ranks receive bitwise the same values.
//
// Thread-safety: each rank's Collective is used by one thread at a time; the
// group's own methods (Abort, Reset) may be called from any thread. The group
// must outlive its ranks' use; no globals, nothing survives the group.
#ifndef TESSERA_ENGINE_CPU_COLLECTIVE_H_
#define TESSERA_ENGINE_CPU_COLLECTIVE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "engine/collective.h"

namespace tessera {

class CpuCollectiveGroup {
 public:
  // `size` >= 1 ranks.
  explicit CpuCollectiveGroup(int size);
  ~CpuCollectiveGroup();
  CpuCollectiveGroup(const CpuCollectiveGroup&) = delete;
  CpuCollectiveGroup& operator=(const CpuCollectiveGroup&) = delete;

  int size() const { return size_; }
  // Rank r's endpoint, owned by the group; 0 <= r < size().
  Collective* rank(int r);

  // Fails every pending and later collective call with CANCELLED(reason):
  // what a rank does when it cannot go on, so its peers do not wait forever.
  void Abort(absl::string_view reason);
  // Clears an abort. Only when no rank is inside a collective call (e.g. after
  // the owner has joined every rank's work for the step).
  void Reset();

 private:
  class Rank;
  friend class Rank;

  // Returns when all ranks have arrived, or CANCELLED after Abort.
  absl::Status Arrive();

  const int size_;
  std::vector<std::unique_ptr<Rank>> ranks_;

  absl::Mutex mu_;
  absl::CondVar all_arrived_;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // generation_'s value, readable without the lock: a waiter spins on it for
  // a few microseconds before sleeping, because a decode step crosses ~180
  // barriers and a condition-variable wake-up costs ~20 µs each.
  std::atomic<uint64_t> released_{0};
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  std::string abort_reason_ ABSL_GUARDED_BY(mu_);

  // Phase-separated by Arrive(): slot r is written only by rank r before a
  // barrier and read by others only after it (the mutex orders the accesses).
  std::vector<const float*> published_;
  std::vector<int64_t> counts_;
  std::vector<std::vector<float>> chunks_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CPU_COLLECTIVE_H_
