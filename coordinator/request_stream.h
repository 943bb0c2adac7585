// What one client request sees of the scheduler: a queue of events (new
// tokens and text, then a final event with the finish reason or an error)
// that the gRPC handler drains, and a cancel flag the handler sets when the
// client goes away.
//
// Thread-safety: all members are safe to call from any thread; the scheduler
// pushes, one handler thread pops. A consumer that multiplexes many streams
// on one thread (the HTTP server) installs a notifier instead of blocking in
// Pop, and drains with TryPop when it fires.
#ifndef TESSERA_COORDINATOR_REQUEST_STREAM_H_
#define TESSERA_COORDINATOR_REQUEST_STREAM_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tessera {

// One entry of a generated position's top-N list.
struct TopLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
  // The token's raw bytes (possibly part of a UTF-8 character); control
  // tokens are rendered ("<|im_end|>") so that a list never shows blanks.
  std::string piece;
};

struct RequestEvent {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  // When the request asked for top_logprobs: one list per token id, in order.
  std::vector<std::vector<TopLogprob>> top_logprobs;
  std::string text;
  bool final = false;
  absl::Status status;          // non-OK: the request failed
  std::string finish_reason;    // "length" or "stop" on the final event
  int64_t prompt_tokens = 0;    // on the final event
  int64_t completion_tokens = 0;
};

class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}

  const std::string& request_id() const { return request_id_; }

  void Push(RequestEvent event) {
    std::function<void()> notify;
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::move(event));
      notify = notifier_;
    }
    // Outside the lock: the notifier may take the consumer's locks.
    if (notify) notify();
  }

  // Called (on the pushing thread, without this stream's lock) after every
  // Push from now on. It must be cheap and must not call back into Push.
  // Events pushed before it was set do not fire it; the caller polls once.
  void SetNotifier(std::function<void()> notifier) {
    absl::MutexLock lock(&mu_);
    notifier_ = std::move(notifier);
  }

  // Takes the oldest event without waiting; false if there is none.
  bool TryPop(RequestEvent* event) {
    absl::MutexLock lock(&mu_);
    if (events_.empty()) return false;
    *event = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  // Waits up to `timeout` for an event; false if none arrived.
  bool Pop(RequestEvent* event, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return false;
    *event = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  const std::string request_id_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<RequestEvent> events_ ABSL_GUARDED_BY(mu_);
  std::function<void()> notifier_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_REQUEST_STREAM_H_
