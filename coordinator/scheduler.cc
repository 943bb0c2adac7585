#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "coordinator/stop_matcher.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

void ToWire(const SamplingParams& p, v1::StageSampling* w) {
  w->set_temperature(p.temperature);
  w->set_top_k(p.top_k);
  w->set_top_p(p.top_p);
  w->set_min_p(p.min_p);
  w->set_repetition_penalty(p.repetition_penalty);
  w->set_repeat_last_n(p.repeat_last_n);
  w->set_seed(p.seed);
}

}  // namespace

Scheduler::Scheduler(const Tokenizer* tokenizer, const ModelConfig& config,
                     SchedulerOptions options)
    : tokenizer_(tokenizer), config_(config), options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

int64_t Scheduler::free_blocks() const {
  absl::MutexLock lock(&mu_);
  return blocks_.free_blocks();
}

v1::PipelineStats Scheduler::pipeline_stats() const {
  std::shared_ptr<PipelineClient> pipeline;
  {
    absl::MutexLock lock(&mu_);
    pipeline = pipeline_;
  }
  return pipeline == nullptr ? v1::PipelineStats() : pipeline->stats();
}

absl::StatusOr<std::shared_ptr<RequestStream>> Scheduler::Submit(RequestSpec spec) {
  const std::string& id = spec.request_id;
  if (spec.prompt.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("request %s: the prompt is empty", id));
  }
  for (size_t i = 0; i < spec.prompt.size(); ++i) {
    if (spec.prompt[i] < 0 || spec.prompt[i] >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "request %s: prompt token_ids[%d] = %d is outside the vocabulary [0, %d)", id, i,
          spec.prompt[i], config_.vocab_size));
    }
  }
  for (int32_t t : spec.stop_token_ids) {
    if (t < 0 || t >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "request %s: stop_token_ids entry %d is outside the vocabulary [0, %d)", id, t,
          config_.vocab_size));
    }
  }
  if (spec.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request %s: max_tokens = %d; must be >= 0", id, spec.max_tokens));
  }
  if (absl::Status s = ValidateSamplingParams(spec.sampling); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("request %s: %s", id, s.message()));
  }
  const int64_t needed = static_cast<int64_t>(spec.prompt.size()) + spec.max_tokens;
  if (needed > options_.max_context) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "request %s: prompt (%d tokens) + max_tokens (%d) = %d exceeds the context limit of %d "
        "(--max-context)",
        id, spec.prompt.size(), spec.max_tokens, needed, options_.max_context));
  }

  auto stream = std::make_shared<RequestStream>(id);
  if (spec.max_tokens == 0) {
    RequestEvent e;
    e.final = true;
    e.finish_reason = "length";
    e.prompt_tokens = static_cast<int64_t>(spec.prompt.size());
    stream->Push(std::move(e));
    return stream;
  }
  absl::MutexLock lock(&mu_);
  if (pipeline_ == nullptr) {
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
  queued_.push_back(std::move(seq));
  return stream;
}

void Scheduler::SetPipeline(std::unique_ptr<PipelineClient> client, int64_t kv_blocks,
                            const std::string& reason) {
  absl::MutexLock lock(&mu_);
  const std::string why = client == nullptr ? reason : "the pipeline was replaced";
  for (auto& s : running_) Finish(s.get(), absl::UnavailableError(why), "");
  running_.clear();
  for (auto& s : queued_) Finish(s.get(), absl::UnavailableError(why), "");
  queued_.clear();
  releases_.clear();
  pipeline_ = std::move(client);
  unavailable_reason_ = reason;
  blocks_.Reset(pipeline_ == nullptr ? 0 : kv_blocks);
}

void Scheduler::Admit() {
  while (!queued_.empty() && static_cast<int64_t>(running_.size()) < options_.max_seqs) {
    Sequence* s = queued_.front().get();
    if (s->stream->cancelled()) {
      queued_.pop_front();
      continue;
    }
    const int64_t tokens = static_cast<int64_t>(s->spec.prompt.size()) + s->spec.max_tokens;
    const int64_t n = (tokens + options_.block_size - 1) / options_.block_size;
    if (!blocks_.Allocate(n, &s->blocks)) break;  // FIFO: wait for blocks
    s->seq_id = next_seq_id_++;
    s->history = s->spec.prompt;
    s->detok = std::make_unique<IncrementalDetokenizer>(*tokenizer_);
    s->stops = std::make_unique<StopMatcher>(s->spec.stop);
    running_.push_back(std::move(queued_.front()));
    queued_.pop_front();
  }
}

void Scheduler::Finish(Sequence* s, const absl::Status& status, const std::string& reason) {
  RequestEvent e;
  e.final = true;
  e.status = status;
  e.finish_reason = reason;
  e.prompt_tokens = static_cast<int64_t>(s->spec.prompt.size());
  e.completion_tokens = s->generated;
  if (status.ok() && s->detok != nullptr) {
    // Whatever the detokenizer and the stop matcher still hold is output.
    bool stopped = false;
    e.text = s->stops->Push(s->detok->Flush(), &stopped);
    if (!stopped) e.text += s->stops->Flush();
  }
  s->stream->Push(std::move(e));
  if (!s->blocks.empty()) {
    blocks_.Free(s->blocks);
    s->blocks.clear();
    releases_.push_back(s->seq_id);
  }
}

bool Scheduler::Accept(Sequence* s, int32_t token, float logprob) {
  const RequestSpec& spec = s->spec;
  if ((!spec.ignore_eos && tokenizer_->IsEndOfGeneration(token)) ||
      std::find(spec.stop_token_ids.begin(), spec.stop_token_ids.end(), token) !=
          spec.stop_token_ids.end()) {
    Finish(s, absl::OkStatus(), "stop");
    return true;
  }
  ++s->generated;
  s->history.push_back(token);
  RequestEvent e;
  e.token_ids.push_back(token);
  if (spec.logprobs) e.logprobs.push_back(logprob);
  bool stopped = false;
  e.text = s->stops->Push(s->detok->Push(token), &stopped);
  if (stopped) {
    s->stream->Push(std::move(e));
    s->detok = nullptr;  // what it holds is past the stop string
    Finish(s, absl::OkStatus(), "stop");
    return true;
  }
  s->stream->Push(std::move(e));
  if (s->generated >= spec.max_tokens) {
    Finish(s, absl::OkStatus(), "length");
    return true;
  }
  return false;
}

void Scheduler::Loop() {
  for (;;) {
    std::shared_ptr<PipelineClient> pipeline;
    v1::StepRequest request;
    // seq id -> (prefill chunk size, whether it samples) for this step.
    absl::flat_hash_map<int64_t, int32_t> chunk_of;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ ||
               (pipeline_ != nullptr && (!queued_.empty() || !running_.empty()));
      };
      mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(100));
      if (stopping_) return;
      if (pipeline_ == nullptr) continue;
      // Cancelled requests give their blocks back before anything else.
      for (auto& s : running_) {
        if (s->stream->cancelled()) Finish(s.get(), absl::CancelledError("cancelled"), "");
      }
      running_.erase(std::remove_if(running_.begin(), running_.end(),
                                    [](const auto& s) { return s->blocks.empty(); }),
                     running_.end());
      Admit();
      if (!releases_.empty()) {
        pipeline_->Release(releases_);
        releases_.clear();
      }
      if (running_.empty()) continue;

      int32_t budget = options_.max_batch_tokens;
      for (auto& sp : running_) {
        Sequence* s = sp.get();
        if (budget == 0) break;
        v1::SequenceWork* w = request.add_seqs();
        w->set_seq_id(s->seq_id);
        w->set_request_id(s->spec.request_id);
        const int32_t prompt_len = static_cast<int32_t>(s->spec.prompt.size());
        int32_t n = 0;
        if (s->prefilled < prompt_len) {
          n = std::min(prompt_len - s->prefilled, budget);
          w->set_start_pos(s->prefilled);
          w->mutable_token_ids()->Add(s->spec.prompt.begin() + s->prefilled,
                                      s->spec.prompt.begin() + s->prefilled + n);
          w->set_sample(s->prefilled + n == prompt_len);
        } else {
          n = 1;
          w->set_start_pos(static_cast<int32_t>(s->history.size()) - 1);
          w->add_token_ids(s->history.back());
          w->set_sample(true);
        }
        w->set_num_tokens(n);
        budget -= n;
        chunk_of[s->seq_id] = n;
        const int64_t end = w->start_pos() + n;
        const int64_t nb = (end + options_.block_size - 1) / options_.block_size;
        w->mutable_block_table()->Add(s->blocks.begin(), s->blocks.begin() + nb);
        if (w->sample()) {
          ToWire(s->spec.sampling, w->mutable_sampling());
          w->set_rng_counter(static_cast<uint64_t>(s->generated));
          w->set_want_logprob(s->spec.logprobs);
          const SamplingParams& p = s->spec.sampling;
          if (p.repetition_penalty != 1.0f && p.repeat_last_n > 0) {
            const size_t k = std::min<size_t>(s->history.size(), p.repeat_last_n);
            w->mutable_recent_tokens()->Add(s->history.end() - k, s->history.end());
          }
        }
      }
      pipeline = pipeline_;
    }

    absl::StatusOr<v1::StepResult> result = pipeline->RunStep(request, options_.step_timeout);

    absl::MutexLock lock(&mu_);
    if (pipeline_ != pipeline) continue;  // the pipeline changed under the step
    absl::flat_hash_map<int64_t, const v1::SampledToken*> sampled;
    if (result.ok()) {
      for (const v1::SampledToken& t : result->tokens()) sampled[t.seq_id()] = &t;
    }
    for (auto& sp : running_) {
      Sequence* s = sp.get();
      auto chunk = chunk_of.find(s->seq_id);
      if (chunk == chunk_of.end()) continue;
      if (!result.ok()) {
        Finish(s, absl::Status(result.status().code(),
                               absl::StrFormat("request %s: %s", s->spec.request_id,
                                               result.status().message())),
               "");
        continue;
      }
      const int32_t prompt_len = static_cast<int32_t>(s->spec.prompt.size());
      if (s->prefilled < prompt_len) s->prefilled += chunk->second;
      auto tok = sampled.find(s->seq_id);
      if (tok != sampled.end()) Accept(s, tok->second->token_id(), tok->second->logprob());
    }
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [](const auto& s) { return s->blocks.empty(); }),
                   running_.end());
  }
}

}  // namespace tessera
