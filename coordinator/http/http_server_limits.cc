// HttpServer's resource limits: the deadline of every connection (idle,
// header, stalled write, lingering close), the timers that enforce them,
// and accepting connections up to max_connections, including when the
// process runs out of file descriptors. Runs on the loop thread.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "coordinator/http/http_connection.h"
#include "coordinator/http/http_server.h"

namespace tessera {

using http_internal::kListenTag;
using http_internal::kAcceptPause;
using http_internal::ToClock;
using http_internal::kHttpLog;

int HttpServer::EpollTimeoutMs() const {
  Clock::time_point next = Clock::time_point::max();
  if (!timers_.empty()) next = timers_.top().at;
  if (accept_paused_) next = std::min(next, accept_resume_at_);
  if (next == Clock::time_point::max()) return -1;
  const Clock::time_point now = Clock::now();
  if (next <= now) return 0;
  // Rounded up, so the loop wakes after the deadline rather than spinning
  // through zero-length waits just before it.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(next - now).count();
  return static_cast<int>(std::min<int64_t>((us + 999) / 1000, INT_MAX));
}

HttpServer::Clock::time_point HttpServer::Deadline(const Connection& c) const {
  if (c.lingering) return c.linger_until;
  if (c.Unsent() > 0) return c.last_write_progress + ToClock(options_.write_stall_timeout);
  if (c.pending != nullptr) return Clock::time_point::max();  // the producer's turn
  if (c.awaiting_body) return c.last_read + ToClock(options_.idle_timeout);
  if (c.fresh || !c.in.empty()) return c.request_started + ToClock(options_.header_timeout);
  return c.idle_since + ToClock(options_.idle_timeout);
}

void HttpServer::Arm(Connection* c) {
  const Clock::time_point d = Deadline(*c);
  if (d < c->scheduled) {
    c->scheduled = d;
    timers_.push({d, c->id});
  }
}

void HttpServer::RunTimers(Clock::time_point now) {
  while (!timers_.empty() && timers_.top().at <= now) {
    const Timer t = timers_.top();
    timers_.pop();
    auto it = connections_.find(t.connection);
    if (it == connections_.end() || it->second->scheduled != t.at) continue;  // stale
    Connection* c = it->second.get();
    c->scheduled = Clock::time_point::max();
    // The deadline may have moved on since this entry was queued (progress).
    if (Deadline(*c) <= now) Expire(c);
    it = connections_.find(t.connection);
    if (it != connections_.end()) Arm(it->second.get());
  }
}

void HttpServer::Expire(Connection* c) {
  if (c->lingering) {
    Close(c);
  } else if (c->Unsent() > 0) {
    ++counters_.closed_for_stall;
    kHttpLog.Info("closing a connection whose client read none of %d buffered bytes in %s", c->Unsent(), absl::FormatDuration(options_.write_stall_timeout));
    Close(c);  // aborts the pending response, if any
  } else if (c->pending != nullptr) {
    // Not reachable: a pending response without unsent bytes has no deadline.
  } else if (c->awaiting_body || c->fresh || !c->in.empty()) {
    ++counters_.request_timeouts;
    SendError(c, 408, "the request did not arrive in time", true);
  } else {
    ++counters_.closed_idle;
    Close(c);
  }
}

void HttpServer::Accept() {
  if (!reserve_fd_.valid()) reserve_fd_ = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  for (;;) {
    if (accept_paused_) return;
    ++counters_.accept_calls;
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      const int error = errno;
      if (error == EINTR || error == ECONNABORTED) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (error == EMFILE || error == ENFILE) ++counters_.accept_fd_exhausted;
      // Out of descriptors or kernel memory: the backlog stays readable, so
      // retrying on the next wake-up would spin.
      ShedWithoutFds(error);
      return;
    }
    fd_exhaustion_logged_ = false;
    const int on = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    auto owned = std::make_unique<Connection>();
    Connection* c = owned.get();
    c->id = next_id_++;
    c->fd = std::move(fd);
    c->request_started = c->last_read = c->idle_since = Clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) continue;
    const uint64_t id = c->id;
    connections_[id] = std::move(owned);
    ++counters_.connections;
    if (connections_.size() - lingering_ > options_.max_connections) {
      ++counters_.rejected_over_limit;
      c->fresh = false;
      SendError(c, 503,
                absl::StrFormat("the server has its maximum of %d connections open; retry later",
                                options_.max_connections),
                true);
    }
    auto it = connections_.find(id);
    if (it != connections_.end()) Arm(it->second.get());
  }
}

void HttpServer::ShedWithoutFds(int error) {
  if (!fd_exhaustion_logged_) {
    kHttpLog.Warning("accept: %s; answering 503 until descriptors free up", strerror(error));
    fd_exhaustion_logged_ = true;
  }
  const std::string reply =
      FormatResponse(ErrorReply(503, "the server is out of file descriptors; retry later"), false);
  // The reserve descriptor makes room for one accept at a time: each pending
  // connection is told why and closed, which drains the backlog.
  while (error == EMFILE || error == ENFILE) {
    if (!reserve_fd_.valid()) reserve_fd_ = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!reserve_fd_.valid()) break;
    reserve_fd_.Reset();
    ++counters_.accept_calls;
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    error = fd.valid() ? EMFILE : errno;
    if (!fd.valid()) {
      reserve_fd_ = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (error == EAGAIN || error == EWOULDBLOCK) return;  // backlog drained
      if (error == EINTR || error == ECONNABORTED) error = EMFILE;
      continue;
    }
    // Unread request bytes at close would turn it into a reset that can
    // destroy the reply before the client reads it.
    char discard[4096];
    while (read(fd.get(), discard, sizeof(discard)) > 0) {
    }
    (void)!send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd.get(), SHUT_WR);
    ++counters_.shed_no_fds;
    fd.Reset();
    reserve_fd_ = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  // No reserve to spend (another thread took the descriptor), or a failure
  // other than EMFILE/ENFILE: stop watching the listening socket for a while.
  accept_paused_ = true;
  accept_resume_at_ = Clock::now() + kAcceptPause;
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, listen_fd_.get(), &ev);
}

void HttpServer::ResumeAccepting() {
  if (!accept_paused_) return;
  accept_paused_ = false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, listen_fd_.get(), &ev);
}

}  // namespace tessera
