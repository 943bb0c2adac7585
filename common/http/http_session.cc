// One HTTP connection of HttpServer (http_server_impl.h has its phases):
// Beast parses each request off the socket, the handler answers, the
// response's bytes go out through a bounded buffer, and one timer enforces
// whichever deadline the phase has.
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "boost/asio/post.hpp"
#include "boost/beast/http/read.hpp"
#include "common/http/http_server_impl.h"

namespace tessera {
namespace http_internal {

Session::Session(HttpServer::Impl* server, uint64_t id, tcp::socket socket)
    : server_(server),
      id_(id),
      conn_(std::move(socket), server->tls.get()),
      timer_(server->ioc) {
  boost::system::error_code ec;
  const tcp::endpoint remote = conn_.socket().remote_endpoint(ec);
  if (!ec) {
    peer_ = absl::StrFormat("%s:%s:%d", remote.address().is_v4() ? "ipv4" : "ipv6",
                            remote.address().to_string(), remote.port());
  }
}

void Session::Start(bool over_limit) {
  request_started_ = last_read_ = idle_since_ = Clock::now();
  if (!conn_.tls()) return Begin(over_limit);
  // The handshake runs on the header clock; a client that fails it is
  // closed without a word (it could not read one).
  phase_ = Phase::kHeaders;
  Arm();
  reading_ = handshaking_ = true;
  conn_.async_handshake([self = shared_from_this(), over_limit](const boost::system::error_code& ec) {
    self->reading_ = self->handshaking_ = false;
    if (self->phase_ != Phase::kHeaders) return;  // timed out meanwhile
    if (ec) {
      kHttpLog.Debug("%s: TLS handshake failed: %s", self->peer_, ec.message());
      return self->Close();
    }
    self->Begin(over_limit);
  });
}

void Session::Begin(bool over_limit) {
  if (over_limit) {
    ++server_->counters.rejected_over_limit;
    SendError(503,
              absl::StrFormat("the server has its maximum of %d connections open; retry later",
                              server_->options.max_connections),
              true);
    return;
  }
  phase_ = Phase::kHeaders;
  Arm();
  ReadHeader();
}

void Session::Shutdown() {
  if (pending_ != nullptr) pending_->Abort();
  pending_.reset();
  conn_.Close();
  phase_ = Phase::kClosed;
}

void Session::ReadHeader() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(
      std::min<size_t>(server_->options.max_header_bytes, UINT32_MAX)));
  parser_->body_limit(static_cast<uint64_t>(server_->options.max_body_bytes));
  reading_ = true;
  beast_http::async_read_header(
      conn_, in_, *parser_,
      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
        self->reading_ = false;
        self->OnHeader(ec);
      });
}

void Session::OnHeader(const boost::system::error_code& ec) {
  if (phase_ == Phase::kLinger) return Discard();
  if (phase_ != Phase::kHeaders) return;  // closed, or timed out meanwhile
  if (ec == beast_http::error::header_limit) {
    return SendError(431, "request headers exceed the limit", true);
  }
  if (ec == beast_http::error::body_limit) {
    const auto length = parser_->content_length();
    return SendError(
        413, absl::StrFormat("request body of %d bytes exceeds the limit of %d",
                             length ? *length : 0, server_->options.max_body_bytes),
        true);
  }
  if (ec == beast_http::error::bad_content_length) {
    // RFC 9112 section 6.3: the body's end is unknown; refuse and close.
    return SendError(400, "malformed or conflicting Content-Length", true);
  }
  if (ec == beast_http::error::bad_version && RequestLineNamesAnotherVersion()) {
    return SendError(505, "only HTTP/1.0 and HTTP/1.1 are served", true);
  }
  if (ec == beast_http::error::bad_transfer_encoding) {
    return SendError(400, "Transfer-Encoding together with Content-Length, or repeated", true);
  }
  if (ec == beast_http::error::end_of_stream || ec == beast_http::error::partial_message ||
      ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::operation_aborted) {
    return Close();  // the client is gone
  }
  if (ec) return SendError(400, absl::StrFormat("malformed request: %s", ec.message()), true);
  const auto& req = parser_->get();
  if (req.version() != 10 && req.version() != 11) {
    return SendError(505, "only HTTP/1.0 and HTTP/1.1 are served", true);
  }
  keep_alive_ = req.keep_alive();
  // A transfer coding other than chunked leaves a request body's end unknown.
  if (req.count(beast_http::field::transfer_encoding) != 0 && !req.chunked()) {
    return SendError(400, "a request Transfer-Encoding must end in chunked", true);
  }
  if (!parser_->is_done()) {
    const auto expect = req[beast_http::field::expect];
    if (!expect.empty()) {
      if (!absl::EqualsIgnoreCase(absl::string_view(expect.data(), expect.size()),
                                  "100-continue")) {
        return SendError(417, "the only expectation served is 100-continue", true);
      }
      // The client waits for this before sending its body (HTTP/1.1 only).
      if (req.version() == 11) out_ += "HTTP/1.1 100 Continue\r\n\r\n";
      Flush();
    }
    phase_ = Phase::kBody;
    last_read_ = Clock::now();
    Arm();
    return ReadBody();
  }
  Dispatch();
}

bool Session::RequestLineNamesAnotherVersion() const {
  // Beast calls both "HTTP/2.0" and a malformed line a bad version; only a
  // well-formed version with another major number is 505 (RFC 9110
  // section 15.6.6), anything else 400.
  const auto bytes = in_.data();
  const std::string head(static_cast<const char*>(bytes.data()),
                         std::min<size_t>(bytes.size(), 8192));
  const size_t eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  const size_t sp = line.rfind(' ');
  if (sp == std::string::npos) return false;
  const std::string version = line.substr(sp + 1);
  return version.size() == 8 && version.compare(0, 5, "HTTP/") == 0 &&
         absl::ascii_isdigit(version[5]) && version[6] == '.' &&
         absl::ascii_isdigit(version[7]) && version[5] != '1';
}

void Session::ReadBody() {
  reading_ = true;
  beast_http::async_read_some(
      conn_, in_, *parser_,
      [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
        self->reading_ = false;
        self->OnBody(ec, bytes);
      });
}

void Session::OnBody(const boost::system::error_code& ec, size_t bytes) {
  if (phase_ == Phase::kLinger) return Discard();
  if (phase_ != Phase::kBody) return;
  if (ec == beast_http::error::body_limit) {
    return SendError(413, absl::StrFormat("request body exceeds the limit of %d bytes",
                                          server_->options.max_body_bytes),
                     true);
  }
  if (ec == beast_http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
      ec == beast_http::error::partial_message) {
    return Close();
  }
  if (ec) return SendError(400, absl::StrFormat("malformed request body: %s", ec.message()), true);
  if (bytes > 0) {
    last_read_ = Clock::now();
    Arm();
  }
  if (!parser_->is_done()) return ReadBody();
  Dispatch();
}

void Session::NextRequest() {
  const Clock::time_point now = Clock::now();
  request_started_ = idle_since_ = now;
  if (in_.size() > 0) {  // pipelined: its bytes are here already
    phase_ = Phase::kHeaders;
    Arm();
    return ReadHeader();
  }
  phase_ = Phase::kIdle;
  Arm();
  reading_ = true;
  // The first bytes of the next request go where the parser reads first.
  // (Not a wait for readability: under TLS the bytes may already sit
  // decrypted-to-be in the TLS layer, and the socket never turns readable.)
  conn_.async_read_some(
      in_.prepare(4096),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
        self->reading_ = false;
        self->in_.commit(bytes);
        if (self->phase_ == Phase::kLinger) return self->Discard();
        if (self->phase_ != Phase::kIdle) return;
        if (ec) return self->Close();
        // The header clock starts at the request's first byte.
        self->phase_ = Phase::kHeaders;
        self->request_started_ = Clock::now();
        self->Arm();
        self->ReadHeader();
      });
}

Waker Session::MakeWaker() {
  std::shared_ptr<WakeTarget> target = server_->wake;
  std::weak_ptr<Session> weak = weak_from_this();
  std::shared_ptr<std::atomic<bool>> queued = wake_queued_;
  return [target, weak, queued] {
    if (queued->exchange(true)) return;  // one wake-up queued is enough
    absl::MutexLock lock(&target->mu);
    if (target->ioc == nullptr) return;  // the server has stopped
    asio::post(*target->ioc, [weak] {
      if (auto self = weak.lock()) self->OnWake();
    });
  };
}

void Session::Dispatch() {
  auto& req = parser_->get();
  HttpRequest r;
  r.method = std::string(req.method_string());
  const std::string target(req.target());
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  for (const auto& field : req) {
    r.headers[absl::AsciiStrToLower(std::string(field.name_string()))] =
        std::string(field.value());
  }
  r.body = std::move(req.body());
  r.keep_alive = keep_alive_;
  r.http_minor = req.version() == 10 ? 0 : 1;
  r.peer = peer_;
  parser_.reset();
  phase_ = Phase::kResponse;
  Arm();
  auto it = server_->routes.find({r.method, r.path});
  if (it == server_->routes.end()) {
    bool path_known = false;
    for (const auto& [key, handler] : server_->routes) path_known |= key.second == r.path;
    if (path_known) {
      return SendError(405, absl::StrFormat("method %s not allowed on %s", r.method, r.path),
                       !r.keep_alive);
    }
    return SendError(404, absl::StrFormat("no such endpoint: %s %s", r.method, r.path),
                     !r.keep_alive);
  }
  HandlerResult result = it->second(r, MakeWaker());
  keep_alive_ = keep_alive_ && !result.close;
  if (result.pending == nullptr) {
    out_ += FormatResponse(result.response, keep_alive_);
    close_after_write_ = !keep_alive_;
    return Flush();
  }
  pending_ = std::move(result.pending);
  PollPending();
}

void Session::OnWake() {
  wake_queued_->store(false);
  if (phase_ == Phase::kResponse) PollPending();
}

void Session::PollPending() {
  if (pending_ == nullptr) return;
  if (Unsent() >= server_->options.max_write_buffer_bytes) {
    // Backpressure: the producer's output waits in its own queue, and the
    // write that drains the buffer polls again.
    if (!poll_deferred_) ++server_->counters.polls_deferred;
    poll_deferred_ = true;
    return;
  }
  poll_deferred_ = false;
  if (pending_->Poll(&out_)) {
    pending_.reset();
    close_after_write_ = !keep_alive_;
  }
  Flush();
}

void Session::Flush() {
  Account();
  if (writing_ || phase_ == Phase::kClosed) return;
  if (Unsent() == 0) return OnAllSent();
  writing_ = true;
  const size_t n = std::min(Unsent(), kMaxWriteBytes);
  conn_.async_write_some(
      asio::buffer(out_.data() + out_offset_, n),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
        self->writing_ = false;
        self->OnWrite(ec, bytes);
      });
}

void Session::OnWrite(const boost::system::error_code& ec, size_t bytes) {
  if (phase_ == Phase::kClosed) return;
  if (ec) return Close();  // the client is gone
  out_offset_ += bytes;
  if (bytes > 0) last_write_progress_ = Clock::now();
  if (out_offset_ >= kCompactBytes && out_offset_ * 2 >= out_.size()) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  Account();
  Arm();
  if (poll_deferred_) return PollPending();
  Flush();
}

void Session::OnAllSent() {
  out_.clear();
  out_offset_ = 0;
  Account();
  if (phase_ != Phase::kResponse || pending_ != nullptr) {
    Arm();  // a 100 Continue went out, or the producer's turn
    return;
  }
  if (close_after_write_) return Linger();
  NextRequest();
}

void Session::SendError(int status, const std::string& message, bool close) {
  phase_ = Phase::kResponse;
  keep_alive_ = keep_alive_ && !close;
  out_ += FormatResponse(server_->ErrorReply(status, message), keep_alive_);
  close_after_write_ = !keep_alive_;
  parser_.reset();
  Flush();
}

void Session::Linger() {
  // Under a flood of refused connections, lingering ones are not kept
  // beyond the number of real ones.
  if (server_->lingering >= std::max<size_t>(server_->options.max_connections, 16)) {
    return Close();
  }
  conn_.ShutdownSend();
  phase_ = Phase::kLinger;
  ++server_->lingering;
  if (counted_open_) {
    --server_->open_sessions;
    counted_open_ = false;
  }
  linger_until_ = Clock::now() + kLinger;
  Arm();
  // A read still in flight (a request head, an idle wait) discards from its
  // completion on.
  if (!reading_) Discard();
}

void Session::Discard() {
  reading_ = true;
  conn_.async_read_some(asio::buffer(discard_),
                        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                          self->reading_ = false;
                          if (self->phase_ != Phase::kLinger) return;
                          if (ec) return self->Close();  // the client read the reply and left
                          self->Discard();
                        });
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  if (pending_ != nullptr) pending_->Abort();
  pending_.reset();
  if (phase_ == Phase::kLinger) --server_->lingering;
  if (counted_open_) --server_->open_sessions;
  counted_open_ = false;
  phase_ = Phase::kClosed;
  server_->counters.buffered_bytes -= static_cast<int64_t>(accounted_);
  accounted_ = 0;
  --server_->counters.connections;
  timer_.cancel();
  conn_.Close();
  HttpServer::Impl* server = server_;
  server->ResumeAccepting();  // a descriptor is free again
  server->sessions.erase(id_);  // may destroy this session: nothing after
}

void Session::Account() {
  const int64_t delta = static_cast<int64_t>(Unsent()) - static_cast<int64_t>(accounted_);
  if (delta == 0) return;
  // The stall clock starts when bytes first have to wait.
  if (accounted_ == 0) last_write_progress_ = Clock::now();
  accounted_ = Unsent();
  Counters& c = server_->counters;
  const int64_t total = c.buffered_bytes.fetch_add(delta) + delta;
  // Only the io thread writes, so load-then-store cannot lose a peak.
  if (total > c.peak_buffered_bytes.load()) c.peak_buffered_bytes = total;
}

Clock::time_point Session::Deadline() const {
  const HttpServerOptions& o = server_->options;
  switch (phase_) {
    case Phase::kClosed:
      return Clock::time_point::max();
    case Phase::kLinger:
      return linger_until_;
    default:
      break;
  }
  if (Unsent() > 0) return last_write_progress_ + ToClock(o.write_stall_timeout);
  switch (phase_) {
    case Phase::kHeaders:
      return request_started_ + ToClock(o.header_timeout);
    case Phase::kIdle:
      return idle_since_ + ToClock(o.idle_timeout);
    case Phase::kBody:
      return last_read_ + ToClock(o.idle_timeout);
    default:
      return Clock::time_point::max();  // the producer's turn
  }
}

void Session::Arm() {
  const Clock::time_point d = Deadline();
  if (d == armed_) return;
  armed_ = d;
  if (d == Clock::time_point::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(d);
  timer_.async_wait([weak = weak_from_this(), d](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || self == nullptr || self->armed_ != d) return;  // re-armed or gone
    self->armed_ = Clock::time_point::max();
    // Progress may have moved the deadline on since this wait began.
    if (self->Deadline() <= Clock::now()) return self->Expire();
    self->Arm();
  });
}

void Session::Expire() {
  if (phase_ == Phase::kLinger || handshaking_) return Close();
  if (Unsent() > 0) {
    ++server_->counters.closed_for_stall;
    kHttpLog.Info("closing a connection whose client read none of %d buffered bytes in %s",
                  Unsent(), absl::FormatDuration(server_->options.write_stall_timeout));
    return Close();  // aborts the pending response, if any
  }
  switch (phase_) {
    case Phase::kHeaders:
    case Phase::kBody:
      ++server_->counters.request_timeouts;
      return SendError(408, "the request did not arrive in time", true);
    case Phase::kIdle:
      ++server_->counters.closed_idle;
      return Close();
    default:
      return;  // the producer's turn: no client deadline
  }
}

}  // namespace http_internal
}  // namespace tessera
