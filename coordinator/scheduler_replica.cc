// The Scheduler's side of replicas (router.h): whether it takes new work,
// handing its sequences over when its pipeline failed, taking over another
// replica's, and draining.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "coordinator/scheduler.h"

namespace tessera {

bool Scheduler::serving() const {
  absl::MutexLock lock(&mu_);
  return pipeline_ != nullptr && !faulted_ && !draining_;
}

const char* Scheduler::state() const {
  absl::MutexLock lock(&mu_);
  if (pipeline_ == nullptr) return "down";
  if (faulted_) return "faulted";
  if (draining_) return "draining";
  return "serving";
}

void Scheduler::StopTaking(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  unavailable_reason_ = reason;
}

int64_t Scheduler::outstanding() const {
  absl::MutexLock lock(&mu_);
  int64_t n = static_cast<int64_t>(queued_.size());
  for (const auto& s : running_) n += s->done ? 0 : 1;
  return n;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::Evacuate(const std::string& reason) {
  std::vector<std::unique_ptr<Sequence>> out;
  std::shared_ptr<StepSink> old;
  {
    absl::MutexLock lock(&mu_);
    // Finished sequences still in flight are dropped with their steps.
    for (auto& s : running_) {
      if (!s->done) out.push_back(std::move(s));
    }
    running_.clear();
    for (auto& s : queued_) {
      if (!s->done) out.push_back(std::move(s));
    }
    queued_.clear();
    for (auto& s : out) s->ForgetReplicaState();
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a->arrival < b->arrival; });
    old = DropPipeline();
    unavailable_reason_ = reason;
    blocks_.Reset(0, options_.block_size);
  }
  // Outside the lock, as in SetPipeline.
  old.reset();
  return out;
}

void Scheduler::Adopt(std::vector<std::unique_ptr<Sequence>> seqs) {
  absl::MutexLock lock(&mu_);
  // Oldest at the very front: push the youngest first.
  std::sort(seqs.begin(), seqs.end(),
            [](const auto& a, const auto& b) { return a->arrival > b->arrival; });
  for (auto& s : seqs) {
    if (++s->migrations > options_.max_migrations) {
      Abandon(s.get(), absl::UnavailableError(absl::StrFormat(
                           "request %s: its replica failed again after %d moves to another "
                           "replica (--max-migrations)",
                           s->spec.request_id, options_.max_migrations)));
      continue;
    }
    queued_.push_front(std::move(s));
  }
  ++events_;
}

void Scheduler::Abandon(Sequence* s, const absl::Status& status) {
  if (s->done) return;
  s->done = true;
  PushEnd(s, status, "");
}

bool Scheduler::IsReplicaFault(const absl::Status& status) const {
  if (!options_.on_fault) return false;
  const absl::StatusCode c = status.code();
  return c == absl::StatusCode::kUnavailable || c == absl::StatusCode::kAborted ||
         c == absl::StatusCode::kDeadlineExceeded;
}

void Scheduler::Fault(const std::string& reason) {
  if (faulted_) return;
  faulted_ = true;
  fault_to_report_ = reason;
  ++events_;
}

}  // namespace tessera
