#include "coordinator/request_stream.h"

#include <utility>

namespace tessera {

void RequestStream::Process(Raw raw) {
  std::vector<RequestEvent> out;
  if (auto* token = std::get_if<GeneratedToken>(&raw)) {
    if (ended_) return;
    if (processor_ == nullptr) {
      RequestEvent e;
      e.token_ids.push_back(token->id);
      e.logprobs.push_back(token->logprob);
      out.push_back(std::move(e));
    } else {
      bool stopped = false;
      processor_->Token(*token, &out, &stopped);
      if (stopped) {
        ended_ = true;
        Cancel();  // the scheduler frees the sequence; its end is dropped
      }
    }
  } else {
    const GenerationEnd& end = std::get<GenerationEnd>(raw);
    if (ended_) return;
    ended_ = true;
    if (processor_ == nullptr) {
      out.push_back(FinalEvent(end));
    } else {
      processor_->End(end, &out);
    }
  }
  for (RequestEvent& e : out) {
    if (e.final) {
      ReportDone(StreamOutcome{e.status, e.finish_reason, e.prompt_tokens, e.completion_tokens});
    }
    ready_.push_back(std::move(e));
  }
}

void RequestStream::ReportDone(const StreamOutcome& outcome) {
  std::function<void(const StreamOutcome&)> on_done;
  {
    absl::MutexLock lock(&mu_);
    on_done = std::move(on_done_);
    on_done_ = nullptr;
  }
  if (on_done) on_done(outcome);
}

RequestStream::~RequestStream() {
  StreamOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    if (!on_done_) return;
    outcome.completion_tokens = tokens_pushed_;
    if (end_pushed_.has_value() && !end_pushed_->status.ok()) {
      outcome.status = end_pushed_->status;
      outcome.prompt_tokens = end_pushed_->prompt_tokens;
    } else {
      outcome.status = absl::CancelledError("the client went away before the end");
      if (end_pushed_.has_value()) outcome.prompt_tokens = end_pushed_->prompt_tokens;
    }
  }
  ReportDone(outcome);
}

bool RequestStream::TryPop(RequestEvent* event) {
  while (ready_.empty()) {
    Raw raw;
    {
      absl::MutexLock lock(&mu_);
      if (raw_.empty()) return false;
      raw = std::move(raw_.front());
      raw_.pop_front();
    }
    Process(std::move(raw));  // outside the lock: detokenizing takes time
  }
  *event = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

bool RequestStream::Pop(RequestEvent* event, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!TryPop(event)) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !raw_.empty(); };
    if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) return false;
  }
  return true;
}

}  // namespace tessera
