#include "coordinator/http/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/listen_address.h"
#include "coordinator/http/http_connection.h"
namespace tessera {

using http_internal::kListenTag;
using http_internal::kWakeTag;
using http_internal::kMaxBufferedInput;
using http_internal::kLinger;
using http_internal::kCompactBytes;

void UniqueFd::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void HttpServer::WakeQueue::Wake(uint64_t connection) {
  absl::MutexLock lock(&mu);
  if (closed) return;
  const bool was_empty = ready.empty();
  ready.push_back(connection);
  if (was_empty) {
    const uint64_t one = 1;
    // A full counter (EAGAIN) already means "wake up"; nothing to do then.
    (void)!write(event_fd.get(), &one, sizeof(one));
  }
}

HttpServer::HttpServer(HttpServerOptions options)
    : options_(std::move(options)), wake_(std::make_shared<WakeQueue>()) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(const std::string& method, const std::string& path, HttpHandler handler) {
  routes_[{method, path}] = std::move(handler);
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.connections = counters_.connections.load();
  s.buffered_bytes = counters_.buffered_bytes.load();
  s.peak_buffered_bytes = counters_.peak_buffered_bytes.load();
  s.polls_deferred = counters_.polls_deferred.load();
  s.closed_for_stall = counters_.closed_for_stall.load();
  s.closed_idle = counters_.closed_idle.load();
  s.request_timeouts = counters_.request_timeouts.load();
  s.rejected_over_limit = counters_.rejected_over_limit.load();
  s.accept_calls = counters_.accept_calls.load();
  s.accept_fd_exhausted = counters_.accept_fd_exhausted.load();
  s.shed_no_fds = counters_.shed_no_fds.load();
  return s;
}

absl::Status HttpServer::Start(const std::string& listen) {
  absl::StatusOr<AddrInfoList> addrs = ResolveListenAddress(listen);
  if (!addrs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--http-listen=%s", addrs.status().message()));
  }
  std::string last_error = "no address";
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) continue;
    const int on = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 1024) != 0) {
      last_error = strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = bound.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    listen_fd_ = std::move(fd);
    break;
  }
  if (!listen_fd_.valid()) {
    return absl::UnavailableError(absl::StrFormat("cannot listen on %s: %s", listen, last_error));
  }
  epoll_fd_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  wake_->event_fd = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  reserve_fd_ = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!epoll_fd_.valid() || !wake_->event_fd.valid() || !reserve_fd_.valid()) {
    return absl::InternalError(absl::StrFormat("epoll/eventfd/reserve fd: %s", strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_->event_fd.get(), &ev);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&wake_->mu);
    wake_->stopping = true;
    const uint64_t one = 1;
    (void)!write(wake_->event_fd.get(), &one, sizeof(one));
  }
  thread_.join();
  for (auto& [id, c] : connections_) {
    if (c->pending != nullptr) c->pending->Abort();
  }
  connections_.clear();
  counters_.connections = 0;
  counters_.buffered_bytes = 0;
  absl::MutexLock lock(&wake_->mu);
  wake_->closed = true;
  wake_->event_fd.Reset();
}

void HttpServer::Loop() {
  constexpr int kMaxEvents = 128;
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_fd_.get(), events, kMaxEvents, EpollTimeoutMs());
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      if (tag == kWakeTag) {
        uint64_t count;
        (void)!read(wake_->event_fd.get(), &count, sizeof(count));
        std::vector<uint64_t> ready;
        {
          absl::MutexLock lock(&wake_->mu);
          if (wake_->stopping) return;
          ready.swap(wake_->ready);
        }
        for (uint64_t id : ready) {
          auto it = connections_.find(id);
          if (it == connections_.end()) continue;
          PollPending(it->second.get());
          // A finished response lets the next buffered request go.
          it = connections_.find(id);
          if (it != connections_.end() && it->second->out.empty()) Process(it->second.get());
          it = connections_.find(id);
          if (it != connections_.end()) Arm(it->second.get());
        }
        continue;
      }
      auto it = connections_.find(tag);
      if (it == connections_.end()) continue;
      Connection* c = it->second.get();
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        Close(c);
        continue;
      }
      if (events[i].events & EPOLLOUT) {
        OnWritable(c);
        if (connections_.find(tag) == connections_.end()) continue;
      }
      if (events[i].events & EPOLLIN) OnReadable(c);
      it = connections_.find(tag);
      if (it != connections_.end()) Arm(it->second.get());
    }
    const Clock::time_point now = Clock::now();
    if (accept_paused_ && now >= accept_resume_at_) ResumeAccepting();
    RunTimers(now);
  }
}

void HttpServer::OnReadable(Connection* c) {
  char buf[16384];
  if (c->lingering) {
    for (;;) {
      const ssize_t n = read(c->fd.get(), buf, sizeof(buf));
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      Close(c);  // the client has read the reply and closed
      return;
    }
  }
  const bool was_idle = !c->fresh && !c->responding && c->in.empty();
  for (;;) {
    const ssize_t n = read(c->fd.get(), buf, sizeof(buf));
    if (n > 0) {
      c->last_read = Clock::now();
      if (was_idle && c->in.empty()) c->request_started = c->last_read;
      c->in.append(buf, n);
      if (c->in.size() > kMaxBufferedInput + options_.max_body_bytes) {
        Close(c);
        return;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Close(c);  // EOF or error: the client is gone
    return;
  }
  Process(c);
}

void HttpServer::Process(Connection* c) {
  const uint64_t id = c->id;
  while (c->pending == nullptr && !c->close_after_write) {
    c->awaiting_body = false;
    const size_t end = c->in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c->in.size() > options_.max_header_bytes) {
        SendError(c, 431, "request headers exceed the limit", true);
      }
      return;
    }
    if (end > options_.max_header_bytes) {
      SendError(c, 431, "request headers exceed the limit", true);
      return;
    }
    std::vector<std::string> lines = absl::StrSplit(c->in.substr(0, end), "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() != 3 || first[0].empty() || first[1].empty() ||
        (first[2] != "HTTP/1.1" && first[2] != "HTTP/1.0")) {
      SendError(c, 400, "malformed request line", true);
      return;
    }
    HttpRequest r;
    r.method = first[0];
    const size_t q = first[1].find('?');
    r.path = first[1].substr(0, q);
    if (q != std::string::npos) r.query = first[1].substr(q + 1);
    r.keep_alive = first[2] == "HTTP/1.1";
    // Content-Length may repeat (as separate lines or a comma list) only
    // with one value; anything else makes the body's end ambiguous, which
    // RFC 9112 section 6.3 says is unrecoverable: 400 and close.
    std::vector<std::string> lengths;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos || colon == 0) {
        SendError(c, 400, "malformed header line", true);
        return;
      }
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (name == "content-length") {
        for (absl::string_view v : absl::StrSplit(value, ',')) {
          lengths.emplace_back(absl::StripAsciiWhitespace(v));
        }
      }
      r.headers[name] = value;
    }
    if (auto it = r.headers.find("connection"); it != r.headers.end()) {
      const std::string v = absl::AsciiStrToLower(it->second);
      if (v == "close") r.keep_alive = false;
      if (v == "keep-alive") r.keep_alive = true;
    }
    if (r.headers.count("transfer-encoding") != 0) {
      if (!lengths.empty()) {
        // RFC 9112 section 6.1: a smuggling vector; refuse and close.
        SendError(c, 400, "Content-Length together with Transfer-Encoding", true);
      } else {
        SendError(c, 411, "chunked request bodies are not supported; send Content-Length",
                  true);
      }
      return;
    }
    size_t length = 0;
    for (const std::string& v : lengths) {
      size_t n = 0;
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
          v.size() > 18 || !absl::SimpleAtoi(v, &n)) {
        SendError(c, 400, absl::StrFormat("malformed Content-Length \"%s\"", v), true);
        return;
      }
      if (&v != &lengths.front() && n != length) {
        SendError(c, 400, "conflicting Content-Length values", true);
        return;
      }
      length = n;
    }
    if (length > options_.max_body_bytes) {
      SendError(c, 413, absl::StrFormat("request body of %d bytes exceeds the limit of %d",
                                        length, options_.max_body_bytes),
                true);
      return;
    }
    if (c->in.size() < end + 4 + length) {  // body not complete yet
      c->awaiting_body = true;
      return;
    }
    r.body = c->in.substr(end + 4, length);
    c->in.erase(0, end + 4 + length);
    c->keep_alive = r.keep_alive;
    Dispatch(c, r);
    if (connections_.find(id) == connections_.end()) return;  // closed while writing
  }
}

void HttpServer::Dispatch(Connection* c, const HttpRequest& request) {
  c->fresh = false;
  c->responding = true;
  auto it = routes_.find({request.method, request.path});
  if (it == routes_.end()) {
    bool path_known = false;
    for (const auto& [key, handler] : routes_) path_known |= key.second == request.path;
    if (path_known) {
      SendError(c, 405, absl::StrFormat("method %s not allowed on %s", request.method,
                                        request.path),
                !request.keep_alive);
    } else {
      SendError(c, 404, absl::StrFormat("no such endpoint: %s %s", request.method, request.path),
                !request.keep_alive);
    }
    return;
  }
  std::shared_ptr<WakeQueue> wake = wake_;
  const uint64_t id = c->id;
  Waker waker = [wake, id] { wake->Wake(id); };
  HandlerResult result = it->second(request, waker);
  if (result.pending == nullptr) {
    c->out += FormatResponse(result.response, c->keep_alive);
    c->close_after_write = !c->keep_alive;
    Flush(c);
    return;
  }
  c->pending = std::move(result.pending);
  PollPending(c);
}

void HttpServer::PollPending(Connection* c) {
  if (c->pending == nullptr) return;
  if (c->Unsent() >= options_.max_write_buffer_bytes) {
    // Backpressure: the producer's events wait in its own queue, and
    // OnWritable polls again once the client has taken some bytes.
    if (!c->poll_deferred) ++counters_.polls_deferred;
    c->poll_deferred = true;
    return;
  }
  c->poll_deferred = false;
  const bool done = c->pending->Poll(&c->out);
  if (done) {
    c->pending.reset();
    c->close_after_write = !c->keep_alive;
  }
  Flush(c);
}

HttpResponse HttpServer::ErrorReply(int status, const std::string& message) const {
  if (options_.error_response) return options_.error_response(status, message);
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = message + "\n";
  return r;
}

void HttpServer::SendError(Connection* c, int status, const std::string& message, bool close) {
  c->fresh = false;
  c->responding = true;
  c->awaiting_body = false;
  c->keep_alive = c->keep_alive && !close;
  c->out += FormatResponse(ErrorReply(status, message), c->keep_alive);
  c->close_after_write = !c->keep_alive;
  c->in.clear();
  Flush(c);
}

void HttpServer::Flush(Connection* c) {
  bool progressed = false;
  while (c->out_offset < c->out.size()) {
    const ssize_t n = send(c->fd.get(), c->out.data() + c->out_offset,
                           c->out.size() - c->out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_offset += n;
      progressed = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c);
    return;
  }
  const Clock::time_point now = Clock::now();
  // The stall clock restarts on every byte the client takes, and starts when
  // bytes first have to wait.
  if (progressed || c->accounted == 0) c->last_write_progress = now;
  if (c->out_offset == c->out.size()) {
    c->out.clear();
    c->out_offset = 0;
    if (c->pending == nullptr && c->responding) {
      c->responding = false;
      c->request_started = c->idle_since = now;
    }
    if (c->pending == nullptr && c->close_after_write) {
      Account(c);
      Linger(c);
      return;
    }
  } else if (c->out_offset >= kCompactBytes && c->out_offset * 2 >= c->out.size()) {
    c->out.erase(0, c->out_offset);
    c->out_offset = 0;
  }
  Account(c);
  UpdateInterest(c);
}

void HttpServer::Account(Connection* c) {
  const int64_t delta = static_cast<int64_t>(c->Unsent()) - static_cast<int64_t>(c->accounted);
  c->accounted = c->Unsent();
  const int64_t total = counters_.buffered_bytes.fetch_add(delta) + delta;
  // Only the loop thread writes, so load-then-store cannot lose a peak.
  if (total > counters_.peak_buffered_bytes.load()) counters_.peak_buffered_bytes = total;
}

void HttpServer::OnWritable(Connection* c) {
  const uint64_t id = c->id;
  Flush(c);
  if (connections_.find(id) == connections_.end()) return;
  if (c->poll_deferred) {
    PollPending(c);
    if (connections_.find(id) == connections_.end()) return;
  }
  // Requests that arrived while the last response was being written.
  if (c->out.empty()) Process(c);
}

void HttpServer::UpdateInterest(Connection* c) {
  const bool want = !c->out.empty();
  if (want == c->want_write) return;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = c->id;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, c->fd.get(), &ev);
  c->want_write = want;
}

void HttpServer::Linger(Connection* c) {
  // Under a flood of refused connections, lingering ones are not kept
  // beyond the number of real ones.
  if (lingering_ >= std::max<size_t>(options_.max_connections, 16)) {
    Close(c);
    return;
  }
  shutdown(c->fd.get(), SHUT_WR);
  c->lingering = true;
  ++lingering_;
  c->in.clear();
  c->linger_until = Clock::now() + kLinger;
  UpdateInterest(c);
}

void HttpServer::Close(Connection* c) {
  if (c->pending != nullptr) {
    c->pending->Abort();
    c->pending.reset();
  }
  if (c->lingering) --lingering_;
  counters_.buffered_bytes -= static_cast<int64_t>(c->accounted);
  --counters_.connections;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
  connections_.erase(c->id);  // closes the socket
  ResumeAccepting();  // a descriptor is free again
}

}  // namespace tessera
