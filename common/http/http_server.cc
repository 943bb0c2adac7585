// HttpServer on Boost.Asio: listening, accepting up to max_connections, and
// what to do when the process runs out of file descriptors. Connections
// themselves are http_session.cc.
#include "common/http/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "boost/asio/post.hpp"
#include "common/listen_address.h"
#include "common/http/http_server_impl.h"

namespace tessera {

namespace asio = boost::asio;
using http_internal::kAcceptPause;
using http_internal::kHttpLog;
using http_internal::Session;
using http_internal::tcp;

void UniqueFd::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

namespace http_internal {

Clock::duration ToClock(absl::Duration d) {
  // Ten years stands in for "never" without overflowing time_point.
  d = std::min(std::max(d, absl::ZeroDuration()), absl::Hours(24 * 365 * 10));
  return std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

}  // namespace http_internal

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(const std::string& method, const std::string& path, HttpHandler handler) {
  impl_->routes[{method, path}] = std::move(handler);
}

HttpServerStats HttpServer::stats() const {
  const http_internal::Counters& c = impl_->counters;
  HttpServerStats s;
  s.connections = c.connections.load();
  s.buffered_bytes = c.buffered_bytes.load();
  s.peak_buffered_bytes = c.peak_buffered_bytes.load();
  s.polls_deferred = c.polls_deferred.load();
  s.closed_for_stall = c.closed_for_stall.load();
  s.closed_idle = c.closed_idle.load();
  s.request_timeouts = c.request_timeouts.load();
  s.rejected_over_limit = c.rejected_over_limit.load();
  s.accept_calls = c.accept_calls.load();
  s.accept_fd_exhausted = c.accept_fd_exhausted.load();
  s.shed_no_fds = c.shed_no_fds.load();
  return s;
}

absl::Status HttpServer::Start(const std::string& listen) {
  if (!impl_->options.tls_cert_pem.empty()) {
    namespace ssl = http_internal::asio::ssl;
    auto tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                     ec);
    const std::string& cert = impl_->options.tls_cert_pem;
    const std::string& key = impl_->options.tls_key_pem;
    if (!ec) tls->use_certificate_chain(http_internal::asio::buffer(cert.data(), cert.size()), ec);
    if (!ec) {
      tls->use_private_key(http_internal::asio::buffer(key.data(), key.size()),
                           ssl::context::pem, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--http-listen=%s: the TLS certificate or key: %s", listen, ec.message()));
    }
    impl_->tls = std::move(tls);
  }
  absl::StatusOr<AddrInfoList> addrs = ResolveListenAddress(listen);
  if (!addrs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--http-listen=%s", addrs.status().message()));
  }
  tcp::acceptor& acceptor = impl_->acceptor;
  std::string last_error = "no address";
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    tcp::endpoint endpoint;
    if (a->ai_addrlen > endpoint.capacity()) continue;
    std::memcpy(endpoint.data(), a->ai_addr, a->ai_addrlen);
    endpoint.resize(a->ai_addrlen);
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(1024, ec);
    if (ec) {
      last_error = ec.message();
      boost::system::error_code ignored;
      acceptor.close(ignored);
      continue;
    }
    port_ = acceptor.local_endpoint(ec).port();
    break;
  }
  if (!acceptor.is_open()) {
    return absl::UnavailableError(absl::StrFormat("cannot listen on %s: %s", listen, last_error));
  }
  impl_->reserve_fd = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!impl_->reserve_fd.valid()) {
    return absl::InternalError(absl::StrFormat("reserve descriptor: %s", strerror(errno)));
  }
  {
    absl::MutexLock lock(&impl_->wake->mu);
    impl_->wake->ioc = &impl_->ioc;
  }
  impl_->DoAccept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  {
    // Wakers from now on post nothing.
    absl::MutexLock lock(&impl_->wake->mu);
    impl_->wake->ioc = nullptr;
  }
  impl_->ioc.stop();
  impl_->thread.join();
  // The io thread is gone: what it owned is ours to end.
  for (auto& [id, session] : impl_->sessions) session->Shutdown();
  impl_->sessions.clear();
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->counters.connections = 0;
  impl_->counters.buffered_bytes = 0;
}

HttpResponse HttpServer::Impl::ErrorReply(int status, const std::string& message) const {
  if (options.error_response) return options.error_response(status, message);
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = message + "\n";
  return r;
}

void HttpServer::Impl::DoAccept() {
  if (accept_paused) return;
  if (!reserve_fd.valid()) reserve_fd = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    ++counters.accept_calls;
    if (ec == asio::error::operation_aborted) return;  // stopping
    if (ec == asio::error::no_descriptors ||
        ec == boost::system::errc::too_many_files_open_in_system) {
      ++counters.accept_fd_exhausted;
      ShedWithoutFds();
      return;
    }
    if (ec) {
      // Aborted by the peer, or a transient error: accept the next one.
      DoAccept();
      return;
    }
    fd_exhaustion_logged = false;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const uint64_t id = next_id++;
    auto session = std::make_shared<Session>(this, id, std::move(socket));
    sessions[id] = session;
    ++counters.connections;
    ++open_sessions;
    session->Start(/*over_limit=*/open_sessions > options.max_connections);
    DoAccept();
  });
}

void HttpServer::Impl::ShedWithoutFds() {
  if (!fd_exhaustion_logged) {
    kHttpLog.Warning("accept: out of file descriptors; answering 503 until some free up");
    fd_exhaustion_logged = true;
  }
  const std::string reply =
      FormatResponse(ErrorReply(503, "the server is out of file descriptors; retry later"), false);
  // The reserve descriptor makes room for one accept at a time: each pending
  // connection is told why and closed, which drains the backlog.
  for (;;) {
    if (!reserve_fd.valid()) reserve_fd = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!reserve_fd.valid()) break;
    reserve_fd.Reset();
    ++counters.accept_calls;
    UniqueFd fd(accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    const int error = errno;
    if (!fd.valid()) {
      reserve_fd = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (error == EAGAIN || error == EWOULDBLOCK) {
        // Backlog drained. Linux's accept() takes a descriptor before it
        // looks at the backlog, so while the table is full even an empty
        // backlog answers EMFILE, and Asio tries an accept at once: wait
        // for a connection to arrive first, or that would spin.
        acceptor.async_wait(tcp::acceptor::wait_read, [this](const boost::system::error_code& ec) {
          if (!ec) DoAccept();
        });
        return;
      }
      if (error == EINTR || error == ECONNABORTED) continue;
      break;
    }
    // Unread request bytes at close would turn it into a reset that can
    // destroy the reply before the client reads it.
    char discard[4096];
    while (read(fd.get(), discard, sizeof(discard)) > 0) {
    }
    (void)!send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd.get(), SHUT_WR);
    ++counters.shed_no_fds;
    fd.Reset();
    reserve_fd = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  // No reserve to spend, or another failure: stop accepting for a while
  // (a connection that closes resumes it sooner).
  accept_paused = true;
  accept_pause.expires_after(kAcceptPause);
  accept_pause.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) ResumeAccepting();
  });
}

void HttpServer::Impl::ResumeAccepting() {
  if (!accept_paused) return;
  accept_paused = false;
  accept_pause.cancel();
  DoAccept();
}

}  // namespace tessera
