#include "common/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/str_format.h"

namespace tessera {

absl::StatusOr<AddrInfoList> ResolveListenAddress(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: expected HOST:PORT", listen));
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
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", listen, gai_strerror(rc)));
  }
  return AddrInfoList(found, freeaddrinfo);
}

namespace {

bool IsLoopback(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

absl::StatusOr<bool> IsLoopbackOnly(const std::string& listen) {
  absl::StatusOr<AddrInfoList> addrs = ResolveListenAddress(listen);
  if (!addrs.ok()) return addrs.status();
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    if (!IsLoopback(a->ai_addr)) return false;
  }
  return true;
}

}  // namespace tessera
