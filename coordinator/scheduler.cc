#include "coordinator/scheduler.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

// Arrival numbers are unique across every scheduler of the process, so a
// sequence moved to another replica keeps its place among the ones there.
std::atomic<uint64_t> g_next_arrival{1};

}  // namespace

void Scheduler::PushEnd(Sequence* s, const absl::Status& status, const std::string& reason) {
  GenerationEnd end;
  end.status = status;
  end.finish_reason = reason;
  end.prompt_tokens = static_cast<int64_t>(s->spec.prompt.size());
  end.completion_tokens = s->generated;
  s->stream->PushEnd(std::move(end));
}


Scheduler::Scheduler(const Tokenizer* tokenizer, const ModelConfig& config,
                     SchedulerOptions options)
    : tokenizer_(tokenizer),
      config_(config),
      options_(options),
      deadlines_(options.step_timeout, options.step_timeout_factor) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  // Close the pipeline while every member its callbacks touch still exists.
  std::shared_ptr<StepSink> pipeline;
  {
    absl::MutexLock lock(&mu_);
    pipeline = std::move(pipeline_);
  }
  pipeline.reset();
}

SchedulerStats Scheduler::stats() const {
  absl::MutexLock lock(&mu_);
  SchedulerStats st = counted_;
  for (const auto& sp : running_) st.running += sp->done ? 0 : 1;
  st.queued = static_cast<int64_t>(queued_.size());
  st.steps_in_flight = static_cast<int64_t>(in_flight_.size());
  st.total_blocks = blocks_.total();
  st.free_blocks = blocks_.free_blocks();
  st.cached_blocks = blocks_.cached_blocks();
  st.prefix_hit_blocks = blocks_.hit_blocks();
  return st;
}

PipelineTiming Scheduler::pipeline_timing() const {
  std::shared_ptr<StepSink> pipeline;
  {
    absl::MutexLock lock(&mu_);
    pipeline = pipeline_;
  }
  return pipeline == nullptr ? PipelineTiming() : pipeline->timing();
}

absl::StatusOr<std::shared_ptr<RequestStream>> Scheduler::Submit(RequestSpec spec) {
  const std::string& id = spec.request_id;
  RETURN_IF_ERROR(ValidateRequestSpec(
      spec, RequestLimits{static_cast<int32_t>(config_.vocab_size), options_.max_context}));
  if (spec.top_logprobs > 0) spec.logprobs = true;

  auto stream = std::make_shared<RequestStream>(
      id, std::make_unique<OutputProcessor>(tokenizer_, spec.stop, spec.logprobs,
                                            static_cast<int64_t>(spec.prompt.size())));
  if (spec.max_tokens == 0) {
    GenerationEnd end;
    end.finish_reason = "length";
    end.prompt_tokens = static_cast<int64_t>(spec.prompt.size());
    stream->PushEnd(std::move(end));
    return stream;
  }
  absl::MutexLock lock(&mu_);
  if (pipeline_ == nullptr || faulted_ || draining_) {
    return absl::UnavailableError(
        absl::StrFormat("request %s: %s", id, unavailable_reason_));
  }
  if (static_cast<int64_t>(queued_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "request %s: %d requests are already waiting (the queue limit); retry after a short "
        "delay",
        id, queued_.size()));
  }
  auto seq = std::make_unique<Sequence>();
  seq->spec = std::move(spec);
  seq->stream = stream;
  seq->arrival = g_next_arrival.fetch_add(1);
  seq->submitted = absl::Now();
  seq->history = seq->spec.prompt;
  queued_.push_back(std::move(seq));
  ++events_;
  return stream;
}

void Scheduler::SetPipeline(std::unique_ptr<StepSink> client, int64_t kv_blocks, int stages,
                            const std::string& reason) {
  std::shared_ptr<StepSink> old;
  {
    absl::MutexLock lock(&mu_);
    const std::string why = client == nullptr ? reason : "the pipeline was replaced";
    // Steps in flight on the old pipeline are abandoned with it: their
    // sequences end here, and their late results are ignored by generation.
    for (auto& s : running_) {
      s->in_flight = false;
      if (!s->done) Finish(s.get(), absl::UnavailableError(why), "");
    }
    running_.clear();
    for (auto& s : queued_) Finish(s.get(), absl::UnavailableError(why), "");
    queued_.clear();
    old = DropPipeline();
    draining_ = false;
    pipeline_ = std::move(client);
    micro_batches_ = std::max(1, options_.micro_batches > 0 ? options_.micro_batches : stages);
    unavailable_reason_ = reason;
    blocks_.Reset(pipeline_ == nullptr ? 0 : kv_blocks, options_.block_size);
  }
  // Destroyed outside the lock: its destructor fails its pending steps,
  // whose callbacks take mu_.
  old.reset();
}

std::shared_ptr<StepSink> Scheduler::DropPipeline() {
  in_flight_.clear();
  completions_.clear();
  releases_.clear();
  ++generation_;
  ++events_;
  blocked_arrival_ = 0;
  faulted_ = false;
  fault_to_report_.clear();
  return std::move(pipeline_);
}

void Scheduler::Admit() {
  int64_t active = 0;
  for (const auto& s : running_) active += s->done ? 0 : 1;
  while (!queued_.empty() && active < options_.max_seqs) {
    Sequence* s = queued_.front().get();
    if (s->stream->cancelled()) {
      Finish(s, absl::CancelledError("cancelled"), "");
      queued_.pop_front();
      continue;
    }
    // Room for everything it must compute, plus one block of headroom so a
    // newcomer does not immediately preempt the sequences already running.
    const int64_t need =
        (static_cast<int64_t>(s->history.size()) + options_.block_size - 1) / options_.block_size;
    if (blocks_.free_blocks() < need + (active > 0 ? 1 : 0)) break;  // FIFO: wait
    s->seq_id = next_seq_id_++;
    // Reuse cached KV of the longest registered prefix, but always compute
    // at least the last token: its logits are what the next token needs.
    const int64_t lookup_blocks =
        (static_cast<int64_t>(s->history.size()) - 1) / options_.block_size;
    s->computed = static_cast<int32_t>(blocks_.Match(s->history, lookup_blocks, &s->blocks) *
                                       options_.block_size);
    if (options_.metrics != nullptr) {
      options_.metrics->PrefixLookup(lookup_blocks * options_.block_size, s->computed);
      if (!s->scheduled) options_.metrics->Scheduled(absl::Now() - s->submitted);
    }
    s->scheduled = true;
    s->registered = static_cast<int64_t>(s->blocks.size());
    s->prefix_cached = s->computed > 0;
    running_.push_back(std::move(queued_.front()));
    queued_.pop_front();
    ++active;
  }
}

void Scheduler::Finish(Sequence* s, const absl::Status& status, const std::string& reason) {
  if (s->done) return;
  s->done = true;
  if (blocked_arrival_ == s->arrival) blocked_arrival_ = 0;
  PushEnd(s, status, reason);
  if (!s->blocks.empty()) {
    blocks_.Release(s->blocks);
    s->blocks.clear();
  }
  if (s->seq_id != 0) releases_.push_back(s->seq_id);
}

bool Scheduler::Accept(Sequence* s, const SampleOutcome& t) {
  const RequestSpec& spec = s->spec;
  if (!t.status.ok()) {
    // The last stage refused to sample this sequence (non-finite values).
    Finish(s, absl::Status(t.status.code(),
                           absl::StrFormat("request %s: the last stage: %s", spec.request_id,
                                           t.status.message())),
           "");
    return true;
  }
  const int32_t token = t.token_id;
  // The list must be exactly what was asked for: a worker that sends another
  // length or ids outside the vocabulary is broken, and its numbers are not
  // passed on to the client.
  const int32_t want = std::min<int32_t>(spec.top_logprobs, config_.vocab_size);
  if (static_cast<int32_t>(t.top.size()) != want) {
    Finish(s, absl::DataLossError(absl::StrFormat(
                  "request %s: the last stage returned %d top logprobs for sequence %d; %d were "
                  "asked for",
                  spec.request_id, t.top.size(), s->seq_id, want)),
           "");
    return true;
  }
  // A token id outside the vocabulary, sampled or among the top ones.
  auto outside = [&](int32_t id, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (id >= 0 && id < config_.vocab_size) return false;
    Finish(s, absl::DataLossError(absl::StrFormat(
                  "request %s: the last stage returned %s %d for sequence %d, outside the "
                  "vocabulary [0, %d)",
                  spec.request_id, what, id, s->seq_id, config_.vocab_size)),
           "");
    return true;
  };
  for (const auto& [id, logprob] : t.top) {
    if (outside(id, "top token id")) return true;
  }
  if (outside(token, "token id")) return true;
  if ((!spec.ignore_eos && tokenizer_->IsEndOfGeneration(token)) ||
      std::find(spec.stop_token_ids.begin(), spec.stop_token_ids.end(), token) !=
          spec.stop_token_ids.end()) {
    Finish(s, absl::OkStatus(), "stop");
    return true;
  }
  ++s->generated;
  s->history.push_back(token);
  GeneratedToken g;
  g.id = token;
  g.logprob = t.logprob;
  if (want > 0) g.top = t.top;
  s->stream->PushToken(std::move(g));
  if (options_.metrics != nullptr) {
    const absl::Time now = absl::Now();
    if (s->generated == 1) {
      options_.metrics->FirstToken(now - s->submitted);
    } else {
      options_.metrics->NextToken(now - s->last_token);
    }
    s->last_token = now;
  }
  if (s->generated >= spec.max_tokens) {
    Finish(s, absl::OkStatus(), "length");
    return true;
  }
  return false;
}

void Scheduler::Sweep() {
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [](const auto& s) { return s->done && !s->in_flight; }),
                 running_.end());
}

void Scheduler::Preempt(Sequence* s) {
  // The waiting rule is for running sequences; a queued one is admitted in
  // order.
  if (blocked_arrival_ == s->arrival) blocked_arrival_ = 0;
  blocks_.Release(s->blocks);
  s->blocks.clear();
  s->registered = 0;
  releases_.push_back(s->seq_id);
  s->seq_id = 0;
  s->computed = 0;
  ++counted_.preemptions;
  if (options_.metrics != nullptr) options_.metrics->Preempted();
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if (it->get() == s) {
      queued_.push_front(std::move(*it));
      running_.erase(it);
      break;
    }
  }
}

bool Scheduler::EnsureBlocks(Sequence* s, int64_t positions) {
  const int64_t need = (positions + options_.block_size - 1) / options_.block_size -
                       static_cast<int64_t>(s->blocks.size());
  if (need <= 0) return true;
  while (blocks_.free_blocks() < need) {
    // The youngest idle sequence that arrived after `s` gives way.
    Sequence* victim = nullptr;
    for (const auto& o : running_) {
      if (o.get() == s || o->done || o->in_flight || o->in_step || o->arrival < s->arrival ||
          o->blocks.empty()) {
        continue;
      }
      if (victim == nullptr || o->arrival > victim->arrival) victim = o.get();
    }
    if (victim == nullptr) return false;
    Preempt(victim);
  }
  return blocks_.Allocate(need, &s->blocks);
}

bool Scheduler::BuildStep(StepPlan* plan, InFlight* step) {
  // Spread the running sequences over the micro-batches.
  int64_t active = 0;
  for (const auto& s : running_) active += s->done ? 0 : 1;
  const int64_t max_seqs_per_step = (active + micro_batches_ - 1) / micro_batches_;
  int32_t budget = options_.max_batch_tokens;
  std::vector<Sequence*> order;
  for (const auto& s : running_) {
    if (!s->done && !s->in_flight && s->stream->cancelled()) {
      Finish(s.get(), absl::CancelledError("cancelled"), "");
    }
    if (!s->done && !s->in_flight) order.push_back(s.get());
  }
  // Decodes first (one token each, latency-critical), then prompt chunks;
  // older sequences first within each kind.
  std::stable_sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) {
    const bool da = a->history.size() - a->computed == 1;
    const bool db = b->history.size() - b->computed == 1;
    if (da != db) return da;
    return a->arrival < b->arrival;
  });
  for (Sequence* s : order) {
    if (budget == 0 || static_cast<int64_t>(step->work.size()) >= max_seqs_per_step) break;
    if (s->seq_id == 0) continue;  // preempted while this step was built
    const int32_t left = static_cast<int32_t>(s->history.size()) - s->computed;
    const int32_t n = std::min(left, budget);
    const int64_t positions = s->computed + n;
    const bool needs_blocks =
        (positions + options_.block_size - 1) / options_.block_size >
        static_cast<int64_t>(s->blocks.size());
    // An older sequence is waiting for blocks: younger ones take none.
    if (needs_blocks && blocked_arrival_ != 0 && s->arrival > blocked_arrival_) continue;
    if (!EnsureBlocks(s, positions)) {
      if (blocked_arrival_ == 0 || s->arrival < blocked_arrival_) blocked_arrival_ = s->arrival;
      continue;  // waits for blocks
    }
    if (blocked_arrival_ == s->arrival) blocked_arrival_ = 0;
    s->in_step = true;
    PlannedSequence& w = plan->seqs.emplace_back();
    w.seq_id = s->seq_id;
    w.request_id = s->spec.request_id;
    w.start_pos = s->computed;
    // The first step of a sequence that reuses cached blocks tells the
    // workers that positions [0, start_pos) are already in them.
    w.prefix_cached = s->prefix_cached;
    s->prefix_cached = false;
    w.tokens.assign(s->history.begin() + s->computed, s->history.begin() + positions);
    w.sample = positions == static_cast<int64_t>(s->history.size());
    const int64_t nb = (positions + options_.block_size - 1) / options_.block_size;
    w.block_table.assign(s->blocks.begin(), s->blocks.begin() + nb);
    if (w.sample) {
      w.sampling = s->spec.sampling;
      w.rng_counter = static_cast<uint64_t>(s->generated);
      w.want_logprob = s->spec.logprobs;
      w.top_logprobs = s->spec.top_logprobs;
      const SamplingParams& p = s->spec.sampling;
      if (p.repetition_penalty != 1.0f && p.repeat_last_n > 0) {
        const size_t k = std::min<size_t>(s->history.size(), p.repeat_last_n);
        w.recent_tokens.assign(s->history.end() - k, s->history.end());
      }
    }
    if (left > 1) counted_.prefill_tokens += n;
    if (n > 1) ++counted_.prefill_chunks;
    budget -= n;
    step->work.emplace_back(s, n);
  }
  counted_.max_step_tokens =
      std::max<int64_t>(counted_.max_step_tokens, options_.max_batch_tokens - budget);
  // A preemption above may have taken a sequence already placed in this
  // step's `order` but never one in `work` (in_step protects those).
  for (auto& [s, n] : step->work) {
    s->in_step = false;
    s->in_flight = true;
  }
  return !step->work.empty();
}

void Scheduler::Complete(Completion c) {
  auto it = in_flight_.find(c.ticket);
  if (c.generation != generation_ || it == in_flight_.end()) return;  // abandoned
  InFlight step = std::move(it->second);
  in_flight_.erase(it);
  if (c.result.ok()) deadlines_.Observe(absl::Now() - step.sent, step.tokens);
  ++counted_.steps;
  absl::flat_hash_map<int64_t, const SampleOutcome*> sampled;
  if (c.result.ok()) {
    for (const SampleOutcome& t : c.result->samples) sampled[t.seq_id] = &t;
  }
  for (auto& [s, n] : step.work) {
    s->in_flight = false;
    if (s->done) continue;
    if (!c.result.ok() && IsReplicaFault(c.result.status())) {
      Fault(std::string(c.result.status().message()));
      continue;  // kept for Evacuate
    }
    if (!c.result.ok()) {
      Finish(s, absl::Status(c.result.status().code(),
                             absl::StrFormat("request %s: %s", s->spec.request_id,
                                             c.result.status().message())),
             "");
      continue;
    }
    s->computed += n;
    const int64_t full = s->computed / options_.block_size;
    if (full > s->registered) {
      blocks_.Register(s->history, s->blocks, s->registered, full);
      s->registered = full;
    }
    auto tok = sampled.find(s->seq_id);
    if (tok != sampled.end()) {
      Accept(s, *tok->second);
    } else if (s->computed == static_cast<int32_t>(s->history.size())) {
      Finish(s, absl::InternalError(absl::StrFormat(
                    "request %s: the last stage returned no token for sequence %d",
                    s->spec.request_id, s->seq_id)),
             "");
    }
    if (!s->done && s->stream->cancelled()) Finish(s, absl::CancelledError("cancelled"), "");
  }
}

void Scheduler::Loop() {
  for (;;) {
    std::shared_ptr<StepSink> pipeline;
    std::vector<std::pair<uint64_t, StepPlan>> to_send;
    std::vector<int64_t> releases;
    uint64_t generation = 0;
    std::string fault;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_ || !completions_.empty() || !fault_to_report_.empty()) return true;
        if (pipeline_ == nullptr || faulted_ || events_ == stalled_at_) return false;
        if (static_cast<int>(in_flight_.size()) >= micro_batches_) return false;
        if (!queued_.empty()) return true;
        for (const auto& s : running_) {
          if (!s->in_flight) return true;
        }
        return false;
      };
      mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(50));
      if (stopping_) return;
      while (!completions_.empty()) {
        Completion c = std::move(completions_.front());
        completions_.pop_front();
        Complete(std::move(c));
      }
      // A step past its deadline: the pipeline is presumably stuck. Alone,
      // its sequences end here (membership will notice a dead worker); as a
      // replica, the replica has failed and they move.
      const absl::Time now = absl::Now();
      for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        if (it->second.sent + it->second.timeout > now) {
          ++it;
          continue;
        }
        const absl::Status late = absl::DeadlineExceededError(
            absl::StrFormat("a pipeline step of %d tokens got no answer within %s",
                            it->second.tokens, absl::FormatDuration(it->second.timeout)));
        const bool replica_fault = IsReplicaFault(late);
        for (auto& [s, n] : it->second.work) {
          s->in_flight = false;
          if (replica_fault) continue;  // kept for Evacuate
          Finish(s, absl::Status(late.code(),
                                 absl::StrFormat("request %s: %s", s->spec.request_id,
                                                 late.message())),
                 "");
        }
        if (replica_fault) Fault(std::string(late.message()));
        ++counted_.deadline_failures;
        if (options_.metrics != nullptr) options_.metrics->HangDetected();
        in_flight_.erase(it++);
      }
      Sweep();
      fault.swap(fault_to_report_);
      if (pipeline_ != nullptr && !faulted_) {
        Admit();
        stalled_at_ = ~uint64_t{0};
        while (static_cast<int>(in_flight_.size()) < micro_batches_) {
          StepPlan request;
          InFlight step;
          if (!BuildStep(&request, &step)) {
            // Nothing can go now (all in flight, or waiting for blocks):
            // sleep until something changes, or the 50 ms poll for
            // cancellations.
            stalled_at_ = events_;
            break;
          }
          step.generation = generation_;
          for (const auto& [s, n] : step.work) step.tokens += n;
          step.sent = now;
          step.timeout = deadlines_.For(step.tokens);
          const uint64_t ticket = next_ticket_++;
          in_flight_[ticket] = std::move(step);
          counted_.max_steps_in_flight = std::max<int64_t>(
              counted_.max_steps_in_flight, static_cast<int64_t>(in_flight_.size()));
          to_send.emplace_back(ticket, std::move(request));
        }
        Sweep();
        releases.swap(releases_);
        pipeline = pipeline_;
        generation = generation_;
      }
    }
    // Outside the lock: the router's handler evacuates this scheduler.
    if (!fault.empty()) options_.on_fault(fault);
    if (pipeline == nullptr) continue;
    // Outside the lock: a send that fails calls its callback at once.
    pipeline->Release(releases);
    for (auto& [ticket, request] : to_send) {
      pipeline->Send(std::move(request),
                     [this, generation, t = ticket](absl::StatusOr<StepOutcome> r) {
                       absl::MutexLock lock(&mu_);
                       completions_.push_back(Completion{generation, t, std::move(r)});
                       ++events_;
                     });
    }
  }
}

}  // namespace tessera
