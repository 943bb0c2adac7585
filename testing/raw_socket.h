// Raw loopback TCP for tests that must control every byte a client sends to
// an HTTP server and see every byte that comes back: connect (optionally with
// a small receive window), send all of a string, and read until a predicate
// holds, the peer closes, or a generous limit passes. The limit makes a
// loaded machine slower, never flaky.
#ifndef TESSERA_TESTING_RAW_SOCKET_H_
#define TESSERA_TESTING_RAW_SOCKET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "common/http/http_server.h"  // UniqueFd

namespace tessera::testing {

inline constexpr std::chrono::seconds kGenerousWait{20};

// A TCP socket, optionally with a small receive buffer set before it
// connects (so the window it advertises stays small).
inline UniqueFd NewSocket(int receive_buffer = 0) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (receive_buffer > 0) {
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  return fd;
}

inline bool ConnectTo(const UniqueFd& fd, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

// A connected socket to 127.0.0.1:`port`, or an invalid one.
inline UniqueFd Connect(int port, int receive_buffer = 0) {
  UniqueFd fd = NewSocket(receive_buffer);
  if (!ConnectTo(fd, port)) return UniqueFd();
  return fd;
}

inline bool SendAll(const UniqueFd& fd, const std::string& data) {
  return send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(data.size());
}

struct ReadResult {
  std::string data;
  bool eof = false;  // the peer closed (or reset) the connection
};

// Reads until `enough(data)` holds, the peer closes, or `limit` passes.
inline ReadResult ReadUntil(const UniqueFd& fd,
                            const std::function<bool(const std::string&)>& enough,
                            std::chrono::steady_clock::duration limit = kGenerousWait) {
  using Clock = std::chrono::steady_clock;
  ReadResult r;
  const Clock::time_point end = Clock::now() + limit;
  while (!enough(r.data)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n <= 0) {
      r.eof = true;
      break;
    }
    r.data.append(buf, n);
  }
  return r;
}

inline ReadResult ReadToEof(const UniqueFd& fd) {
  return ReadUntil(fd, [](const std::string&) { return false; });
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_RAW_SOCKET_H_
