// How `tessera generate` and `tessera bench` reach a coordinator: its
// address, TLS (trusting --tls-ca, presenting --tls-cert/--tls-key when
// given) and the API key sent as 'authorization: Bearer KEY' on every call.
//
// Thread-safety: plain data and pure functions.
#ifndef TESSERA_CLI_CLIENT_CONNECTION_H_
#define TESSERA_CLI_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace tessera {

struct ClientConnection {
  std::string coordinator;  // host:port
  std::string tls_ca;       // PEM path; empty: plaintext
  std::string tls_cert;     // optional client certificate (PEM path) and key
  std::string tls_key;
  std::string api_key;      // empty: none sent
};

// The channel to the coordinator; INVALID_ARGUMENT naming an unreadable
// file or a certificate without its key.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ClientConnection& connection);

// Adds the API key to a call's metadata, if there is one.
void Authorize(const ClientConnection& connection, grpc::ClientContext* context);

}  // namespace tessera

#endif  // TESSERA_CLI_CLIENT_CONNECTION_H_
