// Internal to common/http/http_server*.cc: the server's state on
// Boost.Asio (one io_context, run by one thread) and one connection's state
// machine, whose requests Boost.Beast parses. Everything here runs on the
// io thread, except the Waker, which only posts to it.
//
// A connection is in one phase at a time:
//   kHeaders   the TLS handshake, or reading a request head (header_timeout
//              since the connection opened, the previous response ended, or
//              the first byte of this request arrived on an idle connection;
//              then 408)
//   kIdle      kept alive, no byte of the next request yet (idle_timeout;
//              then closed without a reply)
//   kBody      reading a body (idle_timeout since the last bytes; then 408)
//   kResponse  a response is being produced or sent (no client timeout
//              while the producer is the one to wait for; write_stall_timeout
//              while unsent bytes wait for a client that takes none)
//   kLinger    an error reply sent, the sending side shut, input discarded
//              for a moment so the reply is not lost to a reset
// The next request of a kept-alive connection is read only once the previous
// response has been sent whole; pipelined bytes wait in the read buffer.
#ifndef TESSERA_COMMON_HTTP_HTTP_SERVER_IMPL_H_
#define TESSERA_COMMON_HTTP_HTTP_SERVER_IMPL_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"
#include "common/log.h"
#include "common/http/http_connection.h"
#include "common/http/http_server.h"

namespace tessera {
namespace http_internal {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;

// How long a connection closed after an error reply keeps discarding input.
inline constexpr std::chrono::seconds kLinger{2};
// How long accepting stops when descriptors run out and the reserve one
// could not be used; a closed connection ends it sooner.
inline constexpr std::chrono::milliseconds kAcceptPause{250};
// Sent response bytes are erased from the front of a connection's buffer
// once there are this many and they are at least half of it.
inline constexpr size_t kCompactBytes = 64 * 1024;
// The most one write hands the socket.
inline constexpr size_t kMaxWriteBytes = 256 * 1024;

Clock::duration ToClock(absl::Duration d);

inline const Logger kHttpLog("http-server");

// Where Wakers post: the io_context while the server runs, null after.
struct WakeTarget {
  absl::Mutex mu;
  asio::io_context* ioc ABSL_GUARDED_BY(mu) = nullptr;
};

struct Counters {
  std::atomic<int64_t> connections{0}, buffered_bytes{0}, peak_buffered_bytes{0},
      polls_deferred{0}, closed_for_stall{0}, closed_idle{0}, request_timeouts{0},
      rejected_over_limit{0}, accept_calls{0}, accept_fd_exhausted{0}, shed_no_fds{0};
};

class Session;

}  // namespace http_internal

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions o) : options(std::move(o)) {}

  // Accepts one connection, or handles why it could not.
  void DoAccept();
  // Out of descriptors: answers pending connections 503 through the reserve
  // descriptor, or stops accepting for a while.
  void ShedWithoutFds();
  void ResumeAccepting();
  HttpResponse ErrorReply(int status, const std::string& message) const;

  const HttpServerOptions options;
  std::map<std::pair<std::string, std::string>, HttpHandler> routes;
  // Declared first, so it is destroyed last: sessions' sockets and timers
  // and the handlers queued on it refer to it.
  http_internal::asio::io_context ioc{1};
  http_internal::tcp::acceptor acceptor{ioc};
  // TLS (HttpServerOptions::tls_cert_pem); null: plaintext.
  std::unique_ptr<http_internal::asio::ssl::context> tls;
  http_internal::asio::steady_timer accept_pause{ioc};
  std::shared_ptr<http_internal::WakeTarget> wake = std::make_shared<http_internal::WakeTarget>();
  std::thread thread;
  http_internal::Counters counters;
  // io thread only.
  absl::flat_hash_map<uint64_t, std::shared_ptr<http_internal::Session>> sessions;
  uint64_t next_id = 1;
  size_t open_sessions = 0;  // sessions not lingering
  size_t lingering = 0;
  UniqueFd reserve_fd;   // given up when accept() runs out of descriptors
  bool accept_paused = false;
  bool fd_exhaustion_logged = false;
};

namespace http_internal {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl* server, uint64_t id, tcp::socket socket);

  // Starts reading the first request (after the TLS handshake, if any), or
  // answers 503 past max_connections.
  void Start(bool over_limit);
  // The server is stopping: abort a pending response, close the socket.
  void Shutdown();

 private:
  enum class Phase { kHeaders, kIdle, kBody, kResponse, kLinger, kClosed };

  void Begin(bool over_limit);
  void ReadHeader();
  void OnHeader(const boost::system::error_code& ec);
  bool RequestLineNamesAnotherVersion() const;
  void ReadBody();
  void OnBody(const boost::system::error_code& ec, size_t bytes);
  // The next request of a kept-alive connection: at once if its bytes are
  // already buffered, else after an idle wait.
  void NextRequest();
  void Dispatch();
  void PollPending();
  void OnWake();
  // Starts a write of the unsent bytes if none is in flight.
  void Flush();
  void OnWrite(const boost::system::error_code& ec, size_t bytes);
  void OnAllSent();
  void SendError(int status, const std::string& message, bool close);
  void Linger();
  void Discard();
  void Close();
  // Updates the server's count of unsent bytes.
  void Account();
  Clock::time_point Deadline() const;
  void Arm();
  void Expire();
  size_t Unsent() const { return out_.size() - out_offset_; }
  Waker MakeWaker();

  HttpServer::Impl* const server_;
  const uint64_t id_;
  std::string peer_;  // the client's address, for HttpRequest::peer
  Connection conn_;
  asio::steady_timer timer_;
  Clock::time_point armed_ = Clock::time_point::max();
  Phase phase_ = Phase::kHeaders;
  bool reading_ = false;  // a read of the socket is in flight
  bool writing_ = false;  // a write is in flight
  bool handshaking_ = false;  // the TLS handshake is in flight (no reply possible)

  boost::beast::flat_buffer in_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  char discard_[4096];

  std::string out_;
  size_t out_offset_ = 0;
  size_t accounted_ = 0;
  std::unique_ptr<PendingResponse> pending_;
  bool poll_deferred_ = false;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool counted_open_ = true;
  // Set while a wake-up is queued on the io_context, so a burst of Wakes
  // costs one Poll. Shared with the Wakers, which may outlive the session.
  std::shared_ptr<std::atomic<bool>> wake_queued_ = std::make_shared<std::atomic<bool>>(false);

  Clock::time_point request_started_;  // the header_timeout clock
  Clock::time_point last_read_;        // the body's idle clock
  Clock::time_point idle_since_;
  Clock::time_point last_write_progress_;
  Clock::time_point linger_until_;
};

}  // namespace http_internal
}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_HTTP_SERVER_IMPL_H_
