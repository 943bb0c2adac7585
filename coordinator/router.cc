#include "coordinator/router.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/log.h"

namespace tessera {
namespace {

const Logger kLog("router");

int64_t Outstanding(const SchedulerStats& s) { return s.running + s.queued; }

constexpr size_t kMaxRouted = 1 << 20;

// FNV-1a over the block's token ids, chained on the previous block's hash.
uint64_t ChainHash(uint64_t parent, const int32_t* block, int n) {
  uint64_t h = parent ^ 0xcbf29ce484222325ull;
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(block[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

absl::StatusOr<Placement> ParsePlacement(absl::string_view name) {
  if (name == "cache") return Placement::kCacheAware;
  if (name == "load") return Placement::kLeastLoaded;
  if (name == "round-robin") return Placement::kRoundRobin;
  return absl::InvalidArgumentError(
      absl::StrCat("--placement=", name, ": must be cache, load or round-robin"));
}

Router::Router(const Tokenizer* tokenizer, const ModelConfig& config, SchedulerOptions options,
               RouterOptions router_options)
    : tokenizer_(tokenizer),
      config_(config),
      options_(std::move(options)),
      router_options_(router_options) {
  At(0);  // refuses requests with the reason until a replica is ready
}

Router::~Router() = default;

void Router::set_on_fault(std::function<void(int, uint64_t, const std::string&)> on_fault) {
  absl::MutexLock lock(&mu_);
  on_fault_ = std::move(on_fault);
}

Scheduler* Router::At(int slot) {
  absl::MutexLock lock(&mu_);
  while (static_cast<int>(schedulers_.size()) <= slot) {
    const int s = static_cast<int>(schedulers_.size());
    SchedulerOptions o = options_;
    o.on_fault = [this, s](const std::string& reason) {
      FailOver(s, reason);
      std::function<void(int, uint64_t, const std::string&)> rebuild;
      uint64_t epoch = 0;
      {
        absl::MutexLock lock(&mu_);
        rebuild = on_fault_;
        epoch = epochs_[s];
      }
      if (rebuild) rebuild(s, epoch, reason);
    };
    schedulers_.push_back(std::make_unique<Scheduler>(tokenizer_, config_, std::move(o)));
    epochs_.push_back(0);
    ready_since_.push_back(absl::InfinitePast());
  }
  return schedulers_[slot].get();
}

std::vector<Scheduler*> Router::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<Scheduler*> all;
  for (const auto& s : schedulers_) all.push_back(s.get());
  return all;
}

absl::StatusOr<std::shared_ptr<RequestStream>> Router::Submit(RequestSpec spec) {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_.empty()) {
      return absl::UnavailableError(
          absl::StrFormat("request %s: %s", spec.request_id, draining_));
    }
  }
  // Two tries: a replica can stop serving between the choice and the submit.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Scheduler* best = Place(spec.prompt);
    // None serves: slot 0 validates the request and says why it cannot run.
    if (best == nullptr) return At(0)->Submit(std::move(spec));
    if (attempt == 1) return best->Submit(std::move(spec));
    absl::StatusOr<std::shared_ptr<RequestStream>> r = best->Submit(spec);
    if (r.ok() || r.status().code() != absl::StatusCode::kUnavailable) return r;
  }
  return absl::InternalError("unreachable");
}

Scheduler* Router::Place(const std::vector<int32_t>& prompt) {
  const std::vector<Scheduler*> all = All();
  std::vector<double> load(all.size(), -1);  // -1: not serving
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i]->serving()) load[i] = static_cast<double>(all[i]->outstanding());
  }
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < all.size(); ++i) {
      if (load[i] < 0) continue;
      const absl::Duration age = now - ready_since_[i];
      if (router_options_.ramp_up > absl::ZeroDuration() && age < router_options_.ramp_up) {
        load[i] += static_cast<double>(options_.max_seqs) *
                   (1.0 - absl::FDivDuration(age, router_options_.ramp_up));
      }
    }
  }
  int least = -1;
  for (size_t i = 0; i < all.size(); ++i) {
    if (load[i] >= 0 && (least < 0 || load[i] < load[least])) least = static_cast<int>(i);
  }
  if (least < 0) return nullptr;
  int pick = least;
  const int bs = options_.block_size;
  std::vector<uint64_t> chain;
  absl::MutexLock lock(&mu_);
  if (router_options_.placement == Placement::kRoundRobin) {
    for (size_t k = 0; k < all.size(); ++k) {
      const int i = static_cast<int>((next_turn_ + k) % all.size());
      if (load[i] >= 0) {
        pick = i;
        next_turn_ = i + 1;
        break;
      }
    }
  } else if (router_options_.placement == Placement::kCacheAware && bs > 0) {
    // The last token is always computed, so blocks holding it do not count.
    const int64_t blocks = (static_cast<int64_t>(prompt.size()) - 1) / bs;
    uint64_t h = 0;
    int cached = -1;
    for (int64_t b = 0; b < blocks; ++b) {
      h = ChainHash(h, prompt.data() + b * bs, bs);
      chain.push_back(h);
      auto it = routed_.find(h);
      if (it != routed_.end() && it->second < static_cast<int>(all.size()) &&
          load[it->second] >= 0) {
        cached = it->second;
      }
    }
    const double guard = std::max(4.0, load[least] / 2);
    if (cached >= 0 && load[cached] <= load[least] + guard) pick = cached;
    if (routed_.size() + chain.size() > kMaxRouted) routed_.clear();
    for (uint64_t key : chain) routed_[key] = pick;
  }
  return all[pick];
}

void Router::ReplicaReady(int slot, uint64_t epoch, std::unique_ptr<StepSink> sink,
                          int64_t kv_blocks, int stages) {
  Scheduler* s = At(slot);
  {
    absl::MutexLock lock(&mu_);
    epochs_[slot] = epoch;
    ready_since_[slot] = absl::Now();
  }
  s->SetPipeline(std::move(sink), kv_blocks, stages, "");
}

void Router::ReplicaLost(int slot, const std::string& reason) { FailOver(slot, reason); }

void Router::FailOver(int slot, const std::string& reason) {
  absl::MutexLock failover(&failover_mu_);
  std::vector<std::unique_ptr<Sequence>> moving = At(slot)->Evacuate(reason);
  {
    absl::MutexLock lock(&mu_);
    last_failure_ = reason;
  }
  if (moving.empty()) return;
  // Least loaded first, counting what this failover already gave each.
  std::vector<std::pair<Scheduler*, int64_t>> targets;
  for (Scheduler* s : All()) {
    if (s->serving()) targets.emplace_back(s, Outstanding(s->stats()));
  }
  const size_t total = moving.size();
  if (targets.empty()) {
    for (auto& s : moving) {
      Scheduler::Abandon(s.get(), absl::UnavailableError(absl::StrFormat(
                                      "request %s: replica %d failed (%s) and no other replica "
                                      "is serving",
                                      s->spec.request_id, slot, reason)));
    }
    absl::MutexLock lock(&mu_);
    stranded_ += static_cast<int64_t>(total);
    kLog.Warning("replica %d failed (%s): %d request(s) ended, no replica left to take them",
                 slot, reason, total);
    return;
  }
  std::vector<std::vector<std::unique_ptr<Sequence>>> share(targets.size());
  for (auto& s : moving) {
    size_t pick = 0;
    for (size_t i = 1; i < targets.size(); ++i) {
      if (targets[i].second < targets[pick].second) pick = i;
    }
    ++targets[pick].second;
    share[pick].push_back(std::move(s));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!share[i].empty()) targets[i].first->Adopt(std::move(share[i]));
  }
  absl::MutexLock lock(&mu_);
  migrations_ += static_cast<int64_t>(total);
  if (options_.metrics != nullptr) options_.metrics->Migrated(static_cast<int64_t>(total));
  kLog.Warning("replica %d failed (%s): %d request(s) moved to %d other replica(s)", slot,
               reason, total, targets.size());
}

namespace {

// Polls `idle` until it holds or `timeout` passes.
bool WaitIdle(const std::function<bool()>& idle, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (!idle()) {
    if (absl::Now() >= end) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace

bool Router::Drain(const std::string& reason, absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    draining_ = reason;
  }
  return WaitIdle(
      [this] {
        int64_t n = 0;
        for (Scheduler* s : All()) n += s->outstanding();
        return n == 0;
      },
      timeout);
}

bool Router::DrainReplica(int slot, const std::string& reason, absl::Duration timeout) {
  Scheduler* s = At(slot);
  s->StopTaking(reason);
  return WaitIdle([s] { return s->outstanding() == 0; }, timeout);
}

bool Router::serving() const {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_.empty()) return false;
  }
  for (Scheduler* s : All()) {
    if (s->serving()) return true;
  }
  return false;
}

int Router::slots() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(schedulers_.size());
}

bool Router::replica_serving(int slot) const {
  const std::vector<Scheduler*> all = All();
  return slot >= 0 && slot < static_cast<int>(all.size()) && all[slot]->serving();
}

SchedulerStats Router::replica_stats(int slot) const {
  const std::vector<Scheduler*> all = All();
  if (slot < 0 || slot >= static_cast<int>(all.size())) return SchedulerStats();
  return all[slot]->stats();
}

const char* Router::replica_state(int slot) const {
  const std::vector<Scheduler*> all = All();
  if (slot < 0 || slot >= static_cast<int>(all.size())) return "down";
  return all[slot]->state();
}

SchedulerStats Router::stats() const {
  SchedulerStats sum;
  for (Scheduler* s : All()) {
    const SchedulerStats st = s->stats();
    sum.running += st.running;
    sum.queued += st.queued;
    sum.steps_in_flight += st.steps_in_flight;
    sum.total_blocks += st.total_blocks;
    sum.free_blocks += st.free_blocks;
    sum.preemptions += st.preemptions;
    sum.steps += st.steps;
    sum.prefill_tokens += st.prefill_tokens;
    sum.cached_blocks += st.cached_blocks;
    sum.prefix_hit_blocks += st.prefix_hit_blocks;
    sum.prefill_chunks += st.prefill_chunks;
    sum.max_step_tokens = std::max(sum.max_step_tokens, st.max_step_tokens);
    sum.max_steps_in_flight = std::max(sum.max_steps_in_flight, st.max_steps_in_flight);
    sum.deadline_failures += st.deadline_failures;
  }
  return sum;
}

PipelineTiming Router::pipeline_timing() const {
  for (Scheduler* s : All()) {
    if (s->serving()) return s->pipeline_timing();
  }
  return PipelineTiming();
}

int64_t Router::migrations() const {
  absl::MutexLock lock(&mu_);
  return migrations_;
}

int64_t Router::stranded() const {
  absl::MutexLock lock(&mu_);
  return stranded_;
}

}  // namespace tessera
