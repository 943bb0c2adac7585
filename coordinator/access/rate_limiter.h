// Per-key quotas (RateLimits in caller.h) as token buckets: requests per
// minute and tokens per minute refill continuously (a full minute's worth
// at most, so a quiet key may burst its whole quota at once), concurrent
// streams are a count.
//
// Acquire charges one request and the prompt's tokens when the key has
// them, and holds one stream until the returned lease is destroyed; the
// completion tokens are charged as the lease learns them (the bucket may go
// below zero: the next requests then wait for it to refill). A refusal is
// RESOURCE_EXHAUSTED naming the quota, with the seconds until it would
// succeed as a payload (RetryAfterSeconds) for Retry-After; a prompt larger
// than the whole tokens-per-minute quota is INVALID_ARGUMENT, since waiting
// would never help. Keys without limits are not tracked.
//
// Thread-safety: Acquire and the leases may be used from any thread.
#ifndef TESSERA_COORDINATOR_ACCESS_RATE_LIMITER_H_
#define TESSERA_COORDINATOR_ACCESS_RATE_LIMITER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/access/caller.h"

namespace tessera {

// The whole seconds a RESOURCE_EXHAUSTED refusal says to wait, if it says.
std::optional<int64_t> RetryAfterSeconds(const absl::Status& status);

class RateLimiter {
 public:
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // Charges `tokens` more completion tokens to the key.
    void ChargeTokens(int64_t tokens);

   private:
    friend class RateLimiter;
    Lease(RateLimiter* limiter, std::string key_id) : limiter_(limiter), key_id_(std::move(key_id)) {}
    RateLimiter* const limiter_;
    const std::string key_id_;
  };

  // `now` is the clock (tests pass their own).
  explicit RateLimiter(std::function<absl::Time()> now = [] { return absl::Now(); })
      : now_(std::move(now)) {}

  // The lease (null for a key without limits), or the refusal. The limiter
  // must outlive its leases.
  absl::StatusOr<std::unique_ptr<Lease>> Acquire(const Caller& caller, int64_t prompt_tokens);

 private:
  struct Bucket {
    RateLimits limits;
    double requests = 0;  // available now
    double tokens = 0;
    int64_t streams = 0;  // held now
    absl::Time refilled;
  };
  void Refill(Bucket* b, absl::Time now) const;

  const std::function<absl::Time()> now_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ACCESS_RATE_LIMITER_H_
