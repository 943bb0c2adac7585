// Starting a gRPC server that owns its port alone.
//
// gRPC sets SO_REUSEPORT on its listeners by default, so a second process
// started on a port already in use binds it too and the kernel then spreads
// new connections between the two (a second coordinator with no workers
// took 8 of 20 clients). Every Tessera gRPC listener starts through
// StartExclusiveServer, which turns that off: a taken address fails at start
// with UNAVAILABLE naming the address and the reason the kernel gave.
//
// Thread-safety: call from one thread while setting up a server.
#ifndef TESSERA_PROTO_GRPC_LISTEN_H_
#define TESSERA_PROTO_GRPC_LISTEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace tessera {

// Adds a listener on `address` ("host:port"; port 0 picks a free one) to
// `builder`, whose services are already registered, and starts the server.
// `*port` receives the bound port. `what` names the listener in errors
// ("--listen"). `credentials`: TLS or plaintext (node_security.h).
absl::StatusOr<std::unique_ptr<grpc::Server>> StartExclusiveServer(
    grpc::ServerBuilder* builder, const std::string& address, const std::string& what,
    std::shared_ptr<grpc::ServerCredentials> credentials, int* port);

// Why `address` cannot be bound for listening right now ("Address already
// in use"), found by trying; "" if it can be.
std::string ListenProblem(const std::string& address);

}  // namespace tessera

#endif  // TESSERA_PROTO_GRPC_LISTEN_H_
