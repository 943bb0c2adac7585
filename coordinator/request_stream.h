// What one client request sees of the scheduler: the scheduler pushes
// generated tokens and then the end; the front end takes RequestEvents
// (text, ids, logprobs, the final event) and sets a cancel flag when the
// client goes away.
//
// Turning tokens into text and matching stop strings (output_processor.h)
// happens when the front end takes events, on its thread, not under the
// scheduler's lock. A stop string that completes ends the request there:
// the final event says "stop", later tokens are dropped, and the stream is
// marked cancelled so the scheduler frees the sequence at once.
//
// Thread-safety: Push*, Cancel, cancelled and SetNotifier may be called from
// any thread; TryPop/Pop from one consumer thread at a time. A consumer that
// multiplexes many streams on one thread (the HTTP server, the gRPC pump)
// installs a notifier instead of blocking in Pop, and drains with TryPop when
// it fires.
#ifndef TESSERA_COORDINATOR_REQUEST_STREAM_H_
#define TESSERA_COORDINATOR_REQUEST_STREAM_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/output_processor.h"

namespace tessera {

// How a request ended: as its consumer took the final event, or, when the
// consumer went away first, as the scheduler ended it (then CANCELLED if it
// had not ended at all).
struct StreamOutcome {
  absl::Status status;
  std::string finish_reason;  // "stop" or "length" when OK
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

class RequestStream {
 public:
  // `processor` turns tokens into events; without one (tests of the
  // scheduler alone), each token becomes an event with its id and no text.
  explicit RequestStream(std::string request_id,
                         std::unique_ptr<OutputProcessor> processor = nullptr)
      : request_id_(std::move(request_id)), processor_(std::move(processor)) {}

  const std::string& request_id() const { return request_id_; }

  // Scheduler side.
  void PushToken(GeneratedToken token) { Push(std::move(token)); }
  void PushEnd(GenerationEnd end) { Push(std::move(end)); }

  // Called (on the pushing thread, without this stream's lock) after every
  // push from now on. It must be cheap and must not call back into Push.
  // Events pushed before it was set do not fire it; the caller polls once.
  void SetNotifier(std::function<void()> notifier) {
    absl::MutexLock lock(&mu_);
    notifier_ = std::move(notifier);
  }

  // Consumer side: takes the next event without waiting; false if none.
  bool TryPop(RequestEvent* event);
  // Waits up to `timeout` for an event; false if none arrived.
  bool Pop(RequestEvent* event, absl::Duration timeout);

  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Called once with how the request ended (admission's quotas and audit
  // log): on the consumer's thread when it takes the final event, else when
  // the stream is destroyed. Set it before the consumer starts.
  void SetOnDone(std::function<void(const StreamOutcome&)> on_done) {
    absl::MutexLock lock(&mu_);
    on_done_ = std::move(on_done);
  }

  ~RequestStream();

 private:
  using Raw = std::variant<GeneratedToken, GenerationEnd>;

  void Push(Raw raw) {
    std::function<void()> notify;
    {
      absl::MutexLock lock(&mu_);
      if (std::holds_alternative<GeneratedToken>(raw)) {
        ++tokens_pushed_;
      } else {
        end_pushed_ = std::get<GenerationEnd>(raw);
      }
      raw_.push_back(std::move(raw));
      notify = notifier_;
    }
    // Outside the lock: the notifier may take the consumer's locks.
    if (notify) notify();
  }
  // Turns one raw entry into ready_ events (consumer thread only).
  void Process(Raw raw);
  // Calls on_done_ once, if set.
  void ReportDone(const StreamOutcome& outcome);

  const std::string request_id_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<Raw> raw_ ABSL_GUARDED_BY(mu_);
  std::function<void()> notifier_ ABSL_GUARDED_BY(mu_);
  std::function<void(const StreamOutcome&)> on_done_ ABSL_GUARDED_BY(mu_);
  // What the scheduler pushed, for an outcome the consumer never saw.
  int64_t tokens_pushed_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<GenerationEnd> end_pushed_ ABSL_GUARDED_BY(mu_);
  // Consumer thread only.
  std::unique_ptr<OutputProcessor> processor_;
  std::deque<RequestEvent> ready_;
  bool ended_ = false;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_REQUEST_STREAM_H_
