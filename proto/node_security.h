// How a Tessera node (the coordinator or a worker) proves who it is and
// checks who talks to it: the transport (TLS with certificates from one
// cluster CA, or plaintext guarded by a shared join secret), the safe
// default for listeners, and the credentials of stage streams.
//
// With TLS every node presents its certificate in both directions (mTLS) and
// is known by its certificate's Common Name. Without TLS the join secret is
// required: workers present it to join, and stage streams carry an
// HMAC-SHA-256 of it over the stream's purpose, the replica epoch and the
// stage index, so a proof is good for one stage of one forming of one
// replica only. With TLS and a secret, both are checked. docs/security.md
// has the threat model.
//
// Thread-safety: immutable after Load; every method may be called from any
// thread.
#ifndef TESSERA_PROTO_NODE_SECURITY_H_
#define TESSERA_PROTO_NODE_SECURITY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace tessera {

// The metadata key of a stage stream's proof (without TLS, or with a secret).
inline constexpr char kStageProofKey[] = "tessera-stage-proof";

// What the security flags of both binaries say. Paths are PEM files.
struct NodeSecurityOptions {
  std::string tls_cert;  // this node's certificate (chain), signed by tls_ca
  std::string tls_key;   // its private key
  std::string tls_ca;    // the cluster CA: peers must present certificates it signed
  std::string join_secret;       // the secret itself (visible in ps: prefer the file)
  std::string join_secret_file;  // a file whose first line is the secret
  bool insecure = false;         // allow plaintext listeners on non-loopback addresses
};

class NodeSecurity {
 public:
  // Reads and checks the files: all three TLS paths or none; the key must
  // match the certificate, which must chain to the CA and be valid now.
  // Without TLS a join secret is required. INVALID_ARGUMENT or
  // FAILED_PRECONDITION naming the flag and file.
  static absl::StatusOr<NodeSecurity> Load(const NodeSecurityOptions& options);

  bool tls() const { return !cert_pem_.empty(); }
  // This node's certificate Common Name; "" without TLS.
  const std::string& name() const { return name_; }
  const std::string& join_secret() const { return join_secret_; }
  // The PEM texts (empty without TLS), for listeners outside gRPC (HTTP).
  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }

  // The safe default: a plaintext listener on an address that is not
  // loopback is refused (FAILED_PRECONDITION naming `what` and the address)
  // unless --insecure was given, and then logged as a warning.
  absl::Status CheckListener(const std::string& address, const std::string& what) const;

  // Credentials for a gRPC listener. `require_client_cert`: refuse a TLS
  // handshake without a CA-signed client certificate (node-only ports);
  // otherwise a client certificate is verified when one is presented.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(bool require_client_cert) const;
  // Credentials for a channel to another node or to the coordinator.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;

  // The proof a client of a stage stream sends in kStageProofKey; "" when
  // there is no join secret. `purpose` names the RPC ("steps", "results",
  // "status").
  std::string StageProof(std::string_view purpose, uint64_t epoch, int stage) const;
  // Checks a stage call against what the plan says: with TLS the peer's
  // certificate name must be `expected_peer` (when it is not empty); with a
  // secret the proof must be StageProof(purpose, epoch, stage).
  // UNAUTHENTICATED (no proof, no certificate) or PERMISSION_DENIED (the
  // wrong one), naming the peer.
  absl::Status CheckStagePeer(grpc::ServerContext* context, const std::string& expected_peer,
                              std::string_view purpose, uint64_t epoch, int stage) const;

 private:
  std::string cert_pem_, key_pem_, ca_pem_;
  std::string name_;
  std::string join_secret_;
  bool insecure_ = false;
};

// The proof of knowing `join_secret` for one stage RPC: HMAC-SHA-256 over
// the purpose, epoch and stage index (what StageProof sends).
std::string StageProofFor(std::string_view join_secret, std::string_view purpose,
                          uint64_t epoch, int stage);

// The Common Name of the client certificate the peer of `context` presented
// and the CA verified; "" when none.
std::string PeerCertName(grpc::ServerContext* context);
// The peer for log lines: "ipv4:10.0.0.7:41234" plus " (certificate
// worker-2)" when it presented one.
std::string DescribePeer(grpc::ServerContext* context);

}  // namespace tessera

#endif  // TESSERA_PROTO_NODE_SECURITY_H_
