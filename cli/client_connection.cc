#include "cli/client_connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"

namespace tessera {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrFormat("%s=%s: cannot read it", flag, path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ClientConnection& c) {
  if (c.tls_ca.empty()) {
    if (!c.tls_cert.empty() || !c.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key need --tls-ca");
    }
    return grpc::CreateChannel(c.coordinator, grpc::InsecureChannelCredentials());
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  grpc::SslCredentialsOptions o;
  absl::StatusOr<std::string> ca = ReadPem(c.tls_ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  o.pem_root_certs = *std::move(ca);
  if (!c.tls_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(c.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(c.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *std::move(cert);
    o.pem_private_key = *std::move(key);
  }
  return grpc::CreateChannel(c.coordinator, grpc::SslCredentials(o));
}

void Authorize(const ClientConnection& c, grpc::ClientContext* context) {
  if (!c.api_key.empty()) context->AddMetadata("authorization", "Bearer " + c.api_key);
}

}  // namespace tessera
