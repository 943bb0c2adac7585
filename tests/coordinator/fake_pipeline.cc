#include "tests/coordinator/fake_pipeline.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::testing {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Extend(uint64_t prefix_hash, int32_t token) {
  return Mix(prefix_hash ^ (static_cast<uint64_t>(token) * 0x100000001b3ull));
}

constexpr uint64_t kEmptyHash = 0x243f6a8885a308d3ull;

int32_t Sample(const FakePipelineOptions& o, uint64_t history_hash, uint64_t seed,
               uint64_t counter) {
  const uint64_t h = Mix(history_hash ^ Mix(seed) ^ (counter * 0x9e3779b97f4a7c15ull));
  if (o.eos_every > 0 && o.eos_id >= 0 && h % o.eos_every == 0) return o.eos_id;
  int32_t t = static_cast<int32_t>((h >> 8) % static_cast<uint64_t>(o.vocab - 1));
  if (o.eos_id >= 0 && t >= o.eos_id) ++t;
  return t;
}

}  // namespace

std::vector<int32_t> ReferenceTokens(const FakePipelineOptions& options,
                                     const std::vector<int32_t>& prompt, uint64_t seed,
                                     int32_t max_tokens, bool ignore_eos) {
  uint64_t h = kEmptyHash;
  for (int32_t t : prompt) h = Extend(h, t);
  std::vector<int32_t> out;
  while (static_cast<int32_t>(out.size()) < max_tokens) {
    const int32_t t = Sample(options, h, seed, out.size());
    if (t == options.eos_id && !ignore_eos) break;
    out.push_back(t);
    h = Extend(h, t);
  }
  return out;
}

FakePipeline::FakePipeline(FakePipelineOptions options) : options_(options) {
  kv_.resize(static_cast<size_t>(options_.kv_blocks * options_.block_size));
  if (!options_.manual) thread_ = std::thread([this] { DeliverLoop(); });
}

FakePipeline::~FakePipeline() {
  std::deque<Held> held;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  for (Held& h : held) h.done(absl::UnavailableError("the fake pipeline was closed"));
}

void FakePipeline::Violation(std::string what) { violations_.push_back(std::move(what)); }

StepOutcome FakePipeline::Compute(const StepPlan& plan) {
  StepOutcome outcome;
  const int32_t bs = options_.block_size;
  int64_t total = 0;
  absl::flat_hash_set<int64_t> in_step;
  for (const PlannedSequence& w : plan.seqs) {
    const std::string who = absl::StrCat("step ", sent_.size(), " seq ", w.seq_id, " (",
                                         w.request_id, "): ");
    const int32_t n = static_cast<int32_t>(w.tokens.size());
    total += n;
    if (n == 0) Violation(who + "no tokens");
    if (!in_step.insert(w.seq_id).second) Violation(who + "twice in one step");
    if (!in_flight_.insert(w.seq_id).second) Violation(who + "already in a step in flight");
    if (released_.contains(w.seq_id)) Violation(who + "id used again after its release");
    auto it = seqs_.find(w.seq_id);
    const bool known = it != seqs_.end();
    SeqState& s = seqs_[w.seq_id];
    // The block table must cover exactly the positions up to the chunk's end.
    const int64_t end = static_cast<int64_t>(w.start_pos) + n;
    if (static_cast<int64_t>(w.block_table.size()) != (end + bs - 1) / bs) {
      Violation(absl::StrCat(who, "block table of ", w.block_table.size(), " for ", end,
                             " positions"));
      continue;
    }
    absl::flat_hash_set<int32_t> distinct;
    bool table_ok = true;
    for (int32_t b : w.block_table) {
      if (b < 0 || b >= options_.kv_blocks || !distinct.insert(b).second) table_ok = false;
    }
    if (!table_ok) {
      Violation(who + "block table with an id out of range or repeated");
      continue;
    }
    auto slot = [&](int64_t p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> Position& {
      return kv_[static_cast<size_t>(w.block_table[p / bs]) * bs + p % bs];
    };
    if (!known && w.prefix_cached) {
      // Take the reused prefix from the blocks: if the scheduler matched the
      // wrong ones, the sequence's history (so its tokens) is wrong.
      if (w.start_pos <= 0 || w.start_pos % bs != 0) {
        Violation(absl::StrCat(who, "prefix_cached at start ", w.start_pos));
      }
      uint64_t h = kEmptyHash;
      for (int64_t p = 0; p < w.start_pos; ++p) {
        const Position& pos = slot(p);
        if (pos.seq_id == 0 || pos.hash != Extend(h, pos.token)) {
          Violation(absl::StrCat(who, "reused position ", p, " does not continue the prefix"));
          break;
        }
        h = pos.hash;
        s.tokens.push_back(pos.token);
        s.hashes.push_back(h);
      }
    } else if (known && w.prefix_cached) {
      Violation(who + "prefix_cached on a sequence the stages already hold");
    }
    if (static_cast<int64_t>(s.tokens.size()) != w.start_pos) {
      Violation(absl::StrCat(who, "starts at ", w.start_pos, " but the stages hold ",
                             s.tokens.size(), " positions"));
      continue;
    }
    // Attention reads every earlier position: it must still be this
    // sequence's.
    for (int64_t p = 0; p < w.start_pos; ++p) {
      const Position& pos = slot(p);
      if (pos.token != s.tokens[p] || pos.hash != s.hashes[p]) {
        Violation(absl::StrCat(who, "KV at position ", p, " (block ", w.block_table[p / bs],
                               ") was overwritten by sequence ", pos.seq_id));
        break;
      }
    }
    for (int32_t t : w.tokens) {
      const uint64_t h = Extend(s.hashes.empty() ? kEmptyHash : s.hashes.back(), t);
      const int64_t p = static_cast<int64_t>(s.tokens.size());
      s.tokens.push_back(t);
      s.hashes.push_back(h);
      slot(p) = Position{w.seq_id, t, h};
    }
    if (!w.sample) continue;
    SampleOutcome& o = outcome.samples.emplace_back();
    o.seq_id = w.seq_id;
    o.token_id = Sample(options_, s.hashes.back(), w.sampling.seed, w.rng_counter);
    o.logprob = -static_cast<float>(o.token_id % 7) - 0.5f;
    for (int32_t i = 0; i < w.top_logprobs; ++i) {
      o.top.emplace_back((o.token_id + i) % options_.vocab, -0.25f * static_cast<float>(i + 1));
    }
    if (!overrides_.empty()) {
      overrides_.front()(&o);
      overrides_.pop_front();
    }
  }
  if (options_.max_batch_tokens > 0 && total > options_.max_batch_tokens) {
    Violation(absl::StrCat("step ", sent_.size(), " carries ", total, " tokens"));
  }
  ++timing_.steps;
  timing_.tokens += static_cast<uint64_t>(total);
  return outcome;
}

void FakePipeline::Send(StepPlan plan, Done done) {
  absl::MutexLock lock(&mu_);
  Held h;
  h.outcome = Compute(plan);
  sent_.push_back(plan);
  h.plan = std::move(plan);
  h.done = std::move(done);
  h.due = absl::Now() + options_.latency;
  held_.push_back(std::move(h));
}

void FakePipeline::Release(const std::vector<int64_t>& seq_ids) {
  absl::MutexLock lock(&mu_);
  for (int64_t id : seq_ids) {
    seqs_.erase(id);
    released_.insert(id);
    if (in_flight_.contains(id)) {
      Violation(absl::StrCat("seq ", id, " released while a step of it is in flight"));
    }
  }
}

PipelineTiming FakePipeline::timing() const {
  absl::MutexLock lock(&mu_);
  return timing_;
}

void FakePipeline::DeliverLoop() {
  auto failed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> bool {
    return options_.fail_after_steps > 0 && answered_ >= options_.fail_after_steps;
  };
  bool broken = false;
  for (;;) {
    Held h;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &failed]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!held_.empty() && held_.front().due <= absl::Now() &&
                             !(failed() && options_.hang));
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(1));
      if (stopping_) return;
      if (held_.empty() || held_.front().due > absl::Now()) continue;
      if (failed() && options_.hang) continue;  // held forever
      h = std::move(held_.front());
      held_.pop_front();
      for (const PlannedSequence& w : h.plan.seqs) in_flight_.erase(w.seq_id);
      if (!failed()) {
        ++answered_;
      } else {
        broken = true;
      }
    }
    if (broken) {
      h.done(absl::UnavailableError("the fake pipeline broke"));
      broken = false;
      continue;
    }
    h.done(std::move(h.outcome));
  }
}

bool FakePipeline::DeliverNext() {
  Held h;
  {
    absl::MutexLock lock(&mu_);
    if (held_.empty()) return false;
    h = std::move(held_.front());
    held_.pop_front();
    for (const PlannedSequence& w : h.plan.seqs) in_flight_.erase(w.seq_id);
  }
  h.done(std::move(h.outcome));
  return true;
}

bool FakePipeline::FailNext(const absl::Status& status) {
  Held h;
  {
    absl::MutexLock lock(&mu_);
    if (held_.empty()) return false;
    h = std::move(held_.front());
    held_.pop_front();
    for (const PlannedSequence& w : h.plan.seqs) {
      in_flight_.erase(w.seq_id);
      seqs_.erase(w.seq_id);  // a failed step leaves the stages' state unknown
    }
  }
  h.done(status);
  return true;
}

bool FakePipeline::WaitHeld(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

size_t FakePipeline::held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

void FakePipeline::OverrideNextSample(std::function<void(SampleOutcome*)> edit) {
  absl::MutexLock lock(&mu_);
  overrides_.push_back(std::move(edit));
}

std::vector<std::string> FakePipeline::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

std::vector<StepPlan> FakePipeline::sent() const {
  absl::MutexLock lock(&mu_);
  return sent_;
}

size_t FakePipeline::live_sequences() const {
  absl::MutexLock lock(&mu_);
  return seqs_.size();
}

}  // namespace tessera::testing
