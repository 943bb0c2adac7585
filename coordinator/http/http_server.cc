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

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace {

constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = ~uint64_t{0};
// A client that sends more than this while its response is pending (e.g. a
// pipelining flood) is dropped rather than buffered without bound.
constexpr size_t kMaxBufferedInput = 1 << 20;

}  // namespace

void UniqueFd::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string FormatResponse(const HttpResponse& r, bool keep_alive) {
  std::string out = absl::StrFormat("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n",
                                    r.status, StatusText(r.status), r.content_type, r.body.size());
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n",
                  "\r\n", r.body);
  return out;
}

std::string FormatChunkedHead(int status, const std::string& content_type, bool keep_alive) {
  return absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\nConnection: %s\r\n\r\n",
      status, StatusText(status), content_type, keep_alive ? "keep-alive" : "close");
}

std::string FormatChunk(const std::string& data) {
  if (data.empty()) return "";  // an empty chunk would end the body
  return absl::StrFormat("%x\r\n%s\r\n", data.size(), data);
}

struct HttpServer::Connection {
  uint64_t id = 0;
  UniqueFd fd;
  std::string in;
  std::string out;
  size_t out_offset = 0;
  std::unique_ptr<PendingResponse> pending;
  bool keep_alive = true;       // of the request being answered
  bool close_after_write = false;
  bool want_write = false;      // EPOLLOUT registered
};

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

absl::Status HttpServer::Start(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--http-listen=%s: expected HOST:PORT", listen));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("http listen address %s: %s", listen, gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addrs(found, freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
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
  if (!epoll_fd_.valid() || !wake_->event_fd.valid()) {
    return absl::InternalError(absl::StrFormat("epoll/eventfd: %s", strerror(errno)));
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
  absl::MutexLock lock(&wake_->mu);
  wake_->closed = true;
  wake_->event_fd.Reset();
}

void HttpServer::Loop() {
  constexpr int kMaxEvents = 128;
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_fd_.get(), events, kMaxEvents, -1);
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
    }
  }
}

void HttpServer::Accept() {
  for (;;) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;  // EAGAIN, or out of descriptors: try on the next event
    const int on = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    auto c = std::make_unique<Connection>();
    c->id = next_id_++;
    c->fd = std::move(fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) continue;
    connections_[c->id] = std::move(c);
  }
}

void HttpServer::OnReadable(Connection* c) {
  char buf[16384];
  for (;;) {
    const ssize_t n = read(c->fd.get(), buf, sizeof(buf));
    if (n > 0) {
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
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos || colon == 0) {
        SendError(c, 400, "malformed header line", true);
        return;
      }
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      r.headers[name] = value;
    }
    if (auto it = r.headers.find("connection"); it != r.headers.end()) {
      const std::string v = absl::AsciiStrToLower(it->second);
      if (v == "close") r.keep_alive = false;
      if (v == "keep-alive") r.keep_alive = true;
    }
    if (r.headers.count("transfer-encoding") != 0) {
      SendError(c, 411, "chunked request bodies are not supported; send Content-Length", true);
      return;
    }
    size_t length = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
      if (!absl::SimpleAtoi(it->second, &length)) {
        SendError(c, 400, "malformed Content-Length", true);
        return;
      }
    }
    if (length > options_.max_body_bytes) {
      SendError(c, 413, absl::StrFormat("request body of %d bytes exceeds the limit of %d",
                                        length, options_.max_body_bytes),
                true);
      return;
    }
    if (c->in.size() < end + 4 + length) return;  // body not complete yet
    r.body = c->in.substr(end + 4, length);
    c->in.erase(0, end + 4 + length);
    c->keep_alive = r.keep_alive;
    Dispatch(c, r);
    if (connections_.find(id) == connections_.end()) return;  // closed while writing
  }
}

void HttpServer::Dispatch(Connection* c, const HttpRequest& request) {
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
  const bool done = c->pending->Poll(&c->out);
  if (done) {
    c->pending.reset();
    c->close_after_write = !c->keep_alive;
  }
  Flush(c);
}

void HttpServer::SendError(Connection* c, int status, const std::string& message, bool close) {
  HttpResponse r;
  if (options_.error_response) {
    r = options_.error_response(status, message);
  } else {
    r.status = status;
    r.content_type = "text/plain";
    r.body = message + "\n";
  }
  c->keep_alive = c->keep_alive && !close;
  c->out += FormatResponse(r, c->keep_alive);
  c->close_after_write = !c->keep_alive;
  c->in.clear();
  Flush(c);
}

void HttpServer::Flush(Connection* c) {
  while (c->out_offset < c->out.size()) {
    const ssize_t n = send(c->fd.get(), c->out.data() + c->out_offset,
                           c->out.size() - c->out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_offset += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c);
    return;
  }
  if (c->out_offset == c->out.size()) {
    c->out.clear();
    c->out_offset = 0;
    if (c->pending == nullptr && c->close_after_write) {
      Close(c);
      return;
    }
  }
  UpdateInterest(c);
}

void HttpServer::OnWritable(Connection* c) {
  const uint64_t id = c->id;
  Flush(c);
  // Requests that arrived while the last response was being written.
  if (connections_.find(id) != connections_.end() && c->out.empty()) Process(c);
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

void HttpServer::Close(Connection* c) {
  if (c->pending != nullptr) {
    c->pending->Abort();
    c->pending.reset();
  }
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
  connections_.erase(c->id);  // closes the socket
}

}  // namespace tessera
