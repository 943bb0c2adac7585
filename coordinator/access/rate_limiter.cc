#include "coordinator/access/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera {
namespace {

constexpr char kRetryAfterUrl[] = "tessera.dev/retry-after-seconds";

absl::Status Exhausted(const std::string& message, double wait_seconds) {
  absl::Status s = absl::ResourceExhaustedError(message);
  const int64_t seconds = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_seconds)));
  s.SetPayload(kRetryAfterUrl, absl::Cord(absl::StrCat(seconds)));
  return s;
}

}  // namespace

std::optional<int64_t> RetryAfterSeconds(const absl::Status& status) {
  const auto payload = status.GetPayload(kRetryAfterUrl);
  int64_t seconds = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &seconds)) {
    return std::nullopt;
  }
  return seconds;
}

void RateLimiter::Refill(Bucket* b, absl::Time now) const {
  const double minutes = absl::ToDoubleSeconds(now - b->refilled) / 60.0;
  b->refilled = now;
  if (minutes <= 0) return;
  const RateLimits& l = b->limits;
  b->requests = std::min<double>(l.requests_per_minute, b->requests + minutes * l.requests_per_minute);
  b->tokens = std::min<double>(l.tokens_per_minute, b->tokens + minutes * l.tokens_per_minute);
}

absl::StatusOr<std::unique_ptr<RateLimiter::Lease>> RateLimiter::Acquire(const Caller& caller,
                                                                         int64_t prompt_tokens) {
  const RateLimits& l = caller.limits;
  if (l.requests_per_minute == 0 && l.tokens_per_minute == 0 && l.concurrent_streams == 0) {
    return nullptr;
  }
  if (l.tokens_per_minute > 0 && prompt_tokens > l.tokens_per_minute) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the prompt's %d tokens exceed key %s's whole quota of %d tokens per minute",
        prompt_tokens, caller.key_id, l.tokens_per_minute));
  }
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  auto [it, fresh] = buckets_.try_emplace(caller.key_id);
  Bucket& b = it->second;
  if (fresh) {
    b.requests = static_cast<double>(l.requests_per_minute);
    b.tokens = static_cast<double>(l.tokens_per_minute);
    b.refilled = now;
  }
  b.limits = l;  // a reloaded keys file may have changed them
  Refill(&b, now);
  if (l.concurrent_streams > 0 && b.streams >= l.concurrent_streams) {
    return Exhausted(absl::StrFormat("key %s has %d streams open, its limit", caller.key_id,
                                     b.streams),
                     1.0);
  }
  if (l.requests_per_minute > 0 && b.requests < 1.0) {
    return Exhausted(absl::StrFormat("key %s is over its %d requests per minute", caller.key_id,
                                     l.requests_per_minute),
                     (1.0 - b.requests) * 60.0 / l.requests_per_minute);
  }
  if (l.tokens_per_minute > 0 && b.tokens < prompt_tokens) {
    return Exhausted(absl::StrFormat("key %s is over its %d tokens per minute", caller.key_id,
                                     l.tokens_per_minute),
                     (prompt_tokens - b.tokens) * 60.0 / l.tokens_per_minute);
  }
  if (l.requests_per_minute > 0) b.requests -= 1.0;
  if (l.tokens_per_minute > 0) b.tokens -= static_cast<double>(prompt_tokens);
  ++b.streams;
  return std::unique_ptr<Lease>(new Lease(this, caller.key_id));
}

void RateLimiter::Lease::ChargeTokens(int64_t tokens) {
  absl::MutexLock lock(&limiter_->mu_);
  Bucket& b = limiter_->buckets_[key_id_];
  if (b.limits.tokens_per_minute > 0) b.tokens -= static_cast<double>(tokens);
}

RateLimiter::Lease::~Lease() {
  absl::MutexLock lock(&limiter_->mu_);
  --limiter_->buckets_[key_id_].streams;
}

}  // namespace tessera
