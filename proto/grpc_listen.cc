#include "proto/grpc_listen.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/listen_address.h"

namespace tessera {

std::string ListenProblem(const std::string& address) {
  absl::StatusOr<AddrInfoList> addrs = ResolveListenAddress(address);
  if (!addrs.ok()) return std::string(addrs.status().message());
  std::string problem = "no address";
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    const bool bound = bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0;
    if (!bound) problem = strerror(errno);
    close(fd);
    if (bound) return "";
  }
  return problem;
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartExclusiveServer(
    grpc::ServerBuilder* builder, const std::string& address, const std::string& what,
    std::shared_ptr<grpc::ServerCredentials> credentials, int* port) {
  *port = 0;
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder->AddListeningPort(address, std::move(credentials), port);
  std::unique_ptr<grpc::Server> server = builder->BuildAndStart();
  if (server == nullptr || *port == 0) {
    std::string why = ListenProblem(address);
    if (why.empty()) why = "gRPC could not bind it (see the line above)";
    return absl::UnavailableError(
        absl::StrFormat("%s %s: cannot listen there: %s", what, address, why));
  }
  return server;
}

}  // namespace tessera
