// Internal to coordinator/http/http_server*.cc: the per-connection state
// and the constants the event loop (http_server.cc) and its limits and
// timers (http_server_limits.cc) share. Loop-thread only, like the
// HttpServer methods that use it.
#ifndef TESSERA_COORDINATOR_HTTP_HTTP_CONNECTION_H_
#define TESSERA_COORDINATOR_HTTP_HTTP_CONNECTION_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/log.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "coordinator/http/http_server.h"

namespace tessera {
namespace http_internal {

inline constexpr uint64_t kListenTag = 0;
inline constexpr uint64_t kWakeTag = ~uint64_t{0};
// A client that sends more than this while its response is pending (e.g. a
// pipelining flood) is dropped rather than buffered without bound.
inline constexpr size_t kMaxBufferedInput = 1 << 20;
// How long a connection closed after an error reply keeps discarding input,
// so that the client reads the reply instead of a reset.
inline constexpr std::chrono::seconds kLinger{2};
// How long the listening socket is left unwatched when descriptors run out
// and the reserve one could not be used; a closed connection ends it sooner.
inline constexpr std::chrono::milliseconds kAcceptPause{250};
// Sent response bytes are erased from the front of a connection's buffer
// once there are this many and they are at least half of it, so a stream
// that never fully drains does not keep them.
inline constexpr size_t kCompactBytes = 64 * 1024;

inline std::chrono::steady_clock::duration ToClock(absl::Duration d) {
  // Ten years stands in for "never" without overflowing time_point.
  d = std::min(std::max(d, absl::ZeroDuration()), absl::Hours(24 * 365 * 10));
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

inline const Logger kHttpLog("http-server");

}  // namespace http_internal

struct HttpServer::Connection {
  uint64_t id = 0;
  UniqueFd fd;
  std::string in;
  std::string out;
  size_t out_offset = 0;
  size_t accounted = 0;  // unsent bytes counted in the server's buffered_bytes
  std::unique_ptr<PendingResponse> pending;
  bool keep_alive = true;       // of the request being answered
  bool close_after_write = false;
  bool want_write = false;      // EPOLLOUT registered
  bool fresh = true;            // no request answered yet
  bool responding = false;      // a response has begun and is not all sent
  bool awaiting_body = false;   // headers parsed, body incomplete
  bool poll_deferred = false;   // a Poll waits for the buffer to drain
  bool lingering = false;
  Clock::time_point request_started;      // the header_timeout clock
  Clock::time_point last_read;
  Clock::time_point last_write_progress;  // or when unsent bytes appeared
  Clock::time_point idle_since;
  Clock::time_point linger_until;
  Clock::time_point scheduled = Clock::time_point::max();  // earliest timer queued

  size_t Unsent() const { return out.size() - out_offset; }
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_HTTP_CONNECTION_H_
