// Resolving a "host:port" listen address (a flag's value) into the socket
// addresses to bind: "[::1]:80" brackets, an empty host for every interface,
// port 0 for one the kernel picks. One place for the parsing that every
// listener (gRPC's pre-check, the HTTP server) shares.
//
// Thread-safety: pure function (getaddrinfo is thread-safe).
#ifndef TESSERA_COMMON_LISTEN_ADDRESS_H_
#define TESSERA_COMMON_LISTEN_ADDRESS_H_

#include <netdb.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tessera {

using AddrInfoList = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

// The passive TCP addresses for `listen`; INVALID_ARGUMENT naming it when it
// is not HOST:PORT or does not resolve.
absl::StatusOr<AddrInfoList> ResolveListenAddress(const std::string& listen);

// Whether every address `listen` resolves to is loopback (127/8, ::1), so
// that only this host can connect; errors as ResolveListenAddress.
absl::StatusOr<bool> IsLoopbackOnly(const std::string& listen);

}  // namespace tessera

#endif  // TESSERA_COMMON_LISTEN_ADDRESS_H_
