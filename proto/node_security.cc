#include "proto/node_security.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto.h"
#include "common/listen_address.h"
#include "common/log.h"

namespace tessera {
namespace {

const Logger kLog("security");

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrFormat("%s=%s: cannot read it", flag, path));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every certificate in `pem`, in order.
std::vector<X509Ptr> Certificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the file reads as an error
  return out;
}

std::string CommonName(X509* cert) {
  char name[256] = {0};
  const int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof(name));
  return n > 0 ? std::string(name, n) : "";
}

// Checks the certificate/key/CA triple; the certificate's Common Name.
absl::StatusOr<std::string> CheckIdentity(const NodeSecurityOptions& o, const std::string& cert_pem,
                                          const std::string& key_pem,
                                          const std::string& ca_pem) {
  std::vector<X509Ptr> chain = Certificates(cert_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tls-cert=%s: no PEM certificate in it", o.tls_cert));
  }
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--tls-key=%s: no unencrypted PEM private key in it", o.tls_key));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrFormat(
        "--tls-key=%s is not the key of the certificate in --tls-cert=%s", o.tls_key,
        o.tls_cert));
  }
  std::vector<X509Ptr> cas = Certificates(ca_pem);
  if (cas.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tls-ca=%s: no PEM certificate in it", o.tls_ca));
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& ca : cas) X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(untrusted.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get());
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrFormat("--tls-cert=%s does not verify against --tls-ca=%s: %s", o.tls_cert,
                        o.tls_ca, X509_verify_cert_error_string(err)));
  }
  std::string name = CommonName(chain[0].get());
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--tls-cert=%s has no Common Name; nodes are known by it", o.tls_cert));
  }
  return name;
}

}  // namespace

absl::StatusOr<NodeSecurity> NodeSecurity::Load(const NodeSecurityOptions& o) {
  NodeSecurity s;
  s.insecure_ = o.insecure;
  const int tls_paths = !o.tls_cert.empty() + !o.tls_key.empty() + !o.tls_ca.empty();
  if (tls_paths != 0 && tls_paths != 3) {
    return absl::InvalidArgumentError(
        "--tls-cert, --tls-key and --tls-ca go together: give all three or none");
  }
  if (tls_paths == 3) {
    absl::StatusOr<std::string> cert = ReadFile(o.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(o.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca = ReadFile(o.tls_ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    absl::StatusOr<std::string> name = CheckIdentity(o, *cert, *key, *ca);
    if (!name.ok()) return name.status();
    s.cert_pem_ = *std::move(cert);
    s.key_pem_ = *std::move(key);
    s.ca_pem_ = *std::move(ca);
    s.name_ = *std::move(name);
  }
  if (!o.join_secret.empty() && !o.join_secret_file.empty()) {
    return absl::InvalidArgumentError("give --join-secret or --join-secret-file, not both");
  }
  s.join_secret_ = o.join_secret;
  if (!o.join_secret_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(o.join_secret_file, "--join-secret-file");
    if (!text.ok()) return text.status();
    s.join_secret_ = text->substr(0, text->find_first_of("\r\n"));
    if (s.join_secret_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--join-secret-file=%s: its first line is empty", o.join_secret_file));
    }
  }
  if (!s.tls() && s.join_secret_.empty()) {
    return absl::FailedPreconditionError(
        "without TLS (--tls-cert, --tls-key, --tls-ca) a join secret is required: give "
        "--join-secret-file (or --join-secret) with the same secret on every node");
  }
  return s;
}

absl::Status NodeSecurity::CheckListener(const std::string& address,
                                         const std::string& what) const {
  if (tls()) return absl::OkStatus();
  absl::StatusOr<bool> loopback = IsLoopbackOnly(address);
  if (!loopback.ok()) return loopback.status();
  if (*loopback) return absl::OkStatus();
  if (!insecure_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s: a listener reachable from other hosts needs TLS (--tls-cert, --tls-key, "
        "--tls-ca); give --insecure to serve plaintext there anyway",
        what, address));
  }
  kLog.Warning("%s %s: serving PLAINTEXT to other hosts (--insecure): anyone on the network "
               "can read prompts and answers%s",
               what, address, join_secret_.empty() ? "" : "; nodes are checked by the join secret");
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> NodeSecurity::ServerCredentials(
    bool require_client_cert) const {
  if (!tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> NodeSecurity::ChannelCredentials() const {
  if (!tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem_;
  options.pem_private_key = key_pem_;
  options.pem_cert_chain = cert_pem_;
  return grpc::SslCredentials(options);
}

std::string StageProofFor(std::string_view join_secret, std::string_view purpose,
                          uint64_t epoch, int stage) {
  return HmacSha256Hex(join_secret,
                       absl::StrCat("tessera-stage|", std::string(purpose), "|", epoch, "|", stage));
}

std::string NodeSecurity::StageProof(std::string_view purpose, uint64_t epoch, int stage) const {
  return join_secret_.empty() ? "" : StageProofFor(join_secret_, purpose, epoch, stage);
}

absl::Status NodeSecurity::CheckStagePeer(grpc::ServerContext* context,
                                          const std::string& expected_peer,
                                          std::string_view purpose, uint64_t epoch,
                                          int stage) const {
  if (tls() && !expected_peer.empty()) {
    const std::string peer = PeerCertName(context);
    if (peer.empty()) {
      return absl::UnauthenticatedError(absl::StrFormat(
          "%s: no client certificate; stage %d takes %s only from %s", DescribePeer(context),
          stage, purpose, expected_peer));
    }
    if (peer != expected_peer) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "%s: stage %d takes %s only from %s (the plan's peer), not from %s",
          DescribePeer(context), stage, purpose, expected_peer, peer));
    }
  }
  if (join_secret_.empty()) return absl::OkStatus();
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find(kStageProofKey);
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(absl::StrFormat(
        "%s: no %s metadata; stage %d takes %s only from the node the plan assigned",
        DescribePeer(context), kStageProofKey, stage, purpose));
  }
  const std::string_view given(it->second.data(), it->second.size());
  if (!SecretsEqual(given, StageProof(purpose, epoch, stage))) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: wrong %s for %s on stage %d of epoch %d (not derived from this cluster's join "
        "secret, or for another stage or epoch)",
        DescribePeer(context), kStageProofKey, purpose, stage, epoch));
  }
  return absl::OkStatus();
}

std::string PeerCertName(grpc::ServerContext* context) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const grpc::string_ref& value : auth->FindPropertyValues("x509_common_name")) {
    return std::string(value.data(), value.size());
  }
  return "";
}

std::string DescribePeer(grpc::ServerContext* context) {
  const std::string name = PeerCertName(context);
  return name.empty() ? context->peer() : absl::StrCat(context->peer(), " (certificate ", name, ")");
}

}  // namespace tessera
