// Tessera's HTTP/1.1 server: the coordinator's OpenAI API
// (coordinator/http/openai_api.h) and every node's /metrics
// (common/metrics/metrics_server.h). On Boost.Asio (sockets, timers, one
// io_context run by one thread) and Boost.Beast (request parsing), so that
// hundreds of long-lived responses (server-sent event streams) cost a
// buffer each, not a thread each.
//
// Beast parses requests: Content-Length and chunked bodies, `Expect:
// 100-continue` (answered before the body is read), HTTP/1.0 (closed after
// the response unless it asks for keep-alive) and pipelined requests
// (answered in order). Ambiguous body lengths (RFC 9112 section 6.3:
// differing Content-Length values, one beside Transfer-Encoding) get 400 and
// the connection is closed. Header and body sizes are capped (431, 413);
// requests are routed by method and path (404, 405). A handler runs on the
// server's thread and must not block: it returns either a complete response
// or a PendingResponse whose bytes are produced later. Producers on other
// threads call the Waker they were given; the server then calls the pending
// response's Poll to collect what is ready. A client that disconnects
// before its pending response is complete gets Abort called, so the work
// behind it can be cancelled.
//
// Slow and idle clients are bounded (see HttpServerOptions): a response's
// unsent bytes are capped (past the cap its Poll waits until the socket
// drains; a client that takes nothing for write_stall_timeout is dropped and
// its response Aborted), idle keep-alive connections and unfinished requests
// time out, open connections are capped (past the cap: 503 and close), and
// running out of file descriptors sheds connections with a 503 instead of
// spinning. Every timer uses the monotonic clock.
//
// Thread-safety: Start/Stop/port from the owning thread; handlers and
// PendingResponse methods run only on the server's thread; Waker may be
// called from any thread at any time, even after the server is gone;
// stats() from any thread.
#ifndef TESSERA_COMMON_HTTP_HTTP_SERVER_H_
#define TESSERA_COMMON_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tessera {

// Owns a file descriptor; closes it when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.Release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset();

 private:
  int fd_ = -1;
};

struct HttpRequest {
  std::string method;
  std::string path;    // without the query string
  std::string query;   // after '?', undecoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
  // "Connection: keep-alive".
  bool keep_alive = true;
  int http_minor = 1;  // 0 for an HTTP/1.0 request: no chunked responses
  std::string peer;    // the client's address, as "ipv4:10.0.0.7:41234" (gRPC's form)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones
};

// A response produced over time, driven by the loop thread.
class PendingResponse {
 public:
  virtual ~PendingResponse() = default;
  // Appends the bytes now ready (status line and headers included, first)
  // to `out`; true once the response is complete. Called after each Wake and
  // once right after the handler returns.
  virtual bool Poll(std::string* out) = 0;
  // The client went away before Poll returned true.
  virtual void Abort() = 0;
};

// Schedules a Poll of one pending response. Safe from any thread, cheap, and
// harmless once the connection or the server is gone.
using Waker = std::function<void()>;

struct HandlerResult {
  HttpResponse response;                     // used when `pending` is null
  std::unique_ptr<PendingResponse> pending;
  // Close the connection after this response even if the request asked to
  // keep it (a stream to an HTTP/1.0 client ends at close).
  bool close = false;
};

using HttpHandler = std::function<HandlerResult(const HttpRequest&, const Waker&)>;

struct HttpServerOptions {
  size_t max_header_bytes = 16 * 1024;  // request line + headers; beyond: 431
  size_t max_body_bytes = 4 << 20;      // beyond: 413
  // Unsent response bytes one connection may hold. Past it the pending
  // response is not polled (its producer's output waits in its own queue)
  // until the client has read enough; a response may overshoot it by what
  // one Poll returns.
  size_t max_write_buffer_bytes = 4 << 20;
  // A connection with unsent bytes of which the client takes none for this
  // long is closed and its pending response Aborted. A client that reads
  // slowly but steadily is never dropped.
  absl::Duration write_stall_timeout = absl::Seconds(30);
  // A keep-alive connection with no request in progress is closed (without
  // a response) after this long. Also bounds a request body that stops
  // arriving (then: 408).
  absl::Duration idle_timeout = absl::Seconds(60);
  // A request whose headers are not complete this long after the connection
  // opened (or after the previous response, or after its first byte on an
  // idle connection) gets 408 and the connection is closed.
  absl::Duration header_timeout = absl::Seconds(10);
  // Open connections (not counting ones being closed). A connection accepted
  // past it is answered 503 at once and closed, so the client learns why
  // instead of waiting in the kernel's backlog.
  size_t max_connections = 4096;
  // Renders the server's own errors (bad request, 404, 413 ...) in the API's
  // error shape; null = plain text.
  std::function<HttpResponse(int status, const std::string& message)> error_response;
  // HTTPS: this PEM certificate (chain) and key (TLS 1.2 and later, through
  // OpenSSL); empty: plaintext. The TLS handshake runs on header_timeout.
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

// Serialises a complete response.
std::string FormatResponse(const HttpResponse& response, bool keep_alive);
// The head of a streamed response, then its pieces and its end. Chunked for
// HTTP/1.1 clients; for HTTP/1.0 ones (chunked = false) the body is sent as
// it is and ends when the connection closes (keep_alive must be false).
std::string FormatChunkedHead(int status, const std::string& content_type, bool keep_alive,
                              bool chunked = true);
std::string FormatChunk(const std::string& data, bool chunked = true);
inline std::string LastChunk(bool chunked = true) { return chunked ? "0\r\n\r\n" : ""; }
const char* StatusText(int status);

// Counters since Start; a snapshot, read from any thread.
struct HttpServerStats {
  int64_t connections = 0;          // open sockets, including ones being closed
  int64_t buffered_bytes = 0;       // response bytes taken from handlers, not yet sent
  int64_t peak_buffered_bytes = 0;  // high-water mark of buffered_bytes
  int64_t polls_deferred = 0;       // times a response hit max_write_buffer_bytes
  int64_t closed_for_stall = 0;     // write_stall_timeout expiries
  int64_t closed_idle = 0;          // idle_timeout expiries between requests
  int64_t request_timeouts = 0;     // 408s: header_timeout, or a stalled body
  int64_t rejected_over_limit = 0;  // 503s at max_connections
  int64_t accept_calls = 0;         // accept() system calls
  int64_t accept_fd_exhausted = 0;  // of which failed with EMFILE/ENFILE
  int64_t shed_no_fds = 0;          // connections answered 503 for want of fds
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stops the server and closes every connection
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before Start. `path` matches exactly.
  void Route(const std::string& method, const std::string& path, HttpHandler handler);

  // Binds `host:port` (port 0 = any free one) and starts the server's thread.
  absl::Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }
  HttpServerStats stats() const;

  // Internal (http_server_impl.h): the Asio state, kept out of this header.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_HTTP_SERVER_H_
