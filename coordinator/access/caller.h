// Who is calling, as admission sees it: the API key's id (never the key),
// whether it may use admin calls, its rate limits, and where the call came
// from. Front ends fill one after authenticating (api_keys.h); admission
// charges its quotas (rate_limiter.h) and writes it to the audit log
// (audit_log.h).
//
// Thread-safety: plain data.
#ifndef TESSERA_COORDINATOR_ACCESS_CALLER_H_
#define TESSERA_COORDINATOR_ACCESS_CALLER_H_

#include <cstdint>
#include <string>

namespace tessera {

// Quotas of one API key; 0 = unlimited.
struct RateLimits {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;  // prompt + completion tokens
  int64_t concurrent_streams = 0;
};

struct Caller {
  // The key's id from the keys file; "" when the coordinator runs without
  // --api-keys (then every caller may do everything, unlimited).
  std::string key_id;
  bool admin = true;
  RateLimits limits;
  std::string client;  // the peer's address ("ipv4:10.0.0.7:41234")
  std::string api;     // "grpc" or "http"
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ACCESS_CALLER_H_
