// A small HTTP/1.1 server over POSIX sockets: one epoll event-loop thread
// serves every connection, so hundreds of long-lived responses (server-sent
// event streams) cost a buffer each, not a thread each.
//
// It parses requests (Content-Length bodies only; a chunked body gets 411),
// keeps connections alive, caps header and body sizes (431, 413) and routes
// by method and path. A handler runs on the loop thread and must not block:
// it returns either a complete response or a PendingResponse whose bytes are
// produced later. Producers on other threads call the Waker they were given;
// the loop then calls the pending response's Poll to collect what is ready.
// A client that disconnects before its pending response is complete gets
// Abort called, so the work behind it can be cancelled.
//
// Thread-safety: Start/Stop/port from the owning thread; handlers and
// PendingResponse methods run only on the loop thread; Waker may be called
// from any thread at any time, even after the server is gone.
#ifndef TESSERA_COORDINATOR_HTTP_HTTP_SERVER_H_
#define TESSERA_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

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
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"
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
};

using HttpHandler = std::function<HandlerResult(const HttpRequest&, const Waker&)>;

struct HttpServerOptions {
  size_t max_header_bytes = 16 * 1024;  // request line + headers; beyond: 431
  size_t max_body_bytes = 4 << 20;      // beyond: 413
  // Renders the server's own errors (bad request, 404, 413 ...) in the API's
  // error shape; null = plain text.
  std::function<HttpResponse(int status, const std::string& message)> error_response;
};

// Serialises a complete response.
std::string FormatResponse(const HttpResponse& response, bool keep_alive);
// The head of a chunked response, then its chunks and the terminator.
std::string FormatChunkedHead(int status, const std::string& content_type, bool keep_alive);
std::string FormatChunk(const std::string& data);
inline std::string LastChunk() { return "0\r\n\r\n"; }
const char* StatusText(int status);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stops the loop and closes every connection
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before Start. `path` matches exactly.
  void Route(const std::string& method, const std::string& path, HttpHandler handler);

  // Binds `host:port` (port 0 = any free one) and starts the loop thread.
  absl::Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }

 private:
  struct Connection;
  // What producer threads share with the loop; outlives the server through
  // the Wakers that point at it.
  struct WakeQueue {
    absl::Mutex mu;
    std::vector<uint64_t> ready ABSL_GUARDED_BY(mu);
    bool stopping ABSL_GUARDED_BY(mu) = false;
    bool closed ABSL_GUARDED_BY(mu) = false;  // the eventfd is gone
    UniqueFd event_fd;
    void Wake(uint64_t connection);
  };

  void Loop();
  void Accept();
  void OnReadable(Connection* c);
  void OnWritable(Connection* c);
  // Handles every complete request buffered in `c` while none is pending.
  void Process(Connection* c);
  void Dispatch(Connection* c, const HttpRequest& request);
  void PollPending(Connection* c);
  void Flush(Connection* c);
  void UpdateInterest(Connection* c);
  void Close(Connection* c);
  void SendError(Connection* c, int status, const std::string& message, bool close);

  const HttpServerOptions options_;
  std::map<std::pair<std::string, std::string>, HttpHandler> routes_;
  UniqueFd listen_fd_;
  UniqueFd epoll_fd_;
  std::shared_ptr<WakeQueue> wake_;
  int port_ = 0;
  std::thread thread_;
  // Loop thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  uint64_t next_id_ = 1;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_HTTP_HTTP_SERVER_H_
