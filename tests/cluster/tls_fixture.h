// Shared by the TLS tests: certificates from tests/cluster/make_test_certs.sh,
// the flags and client credentials that use them, and the independent
// Python grpcio client (tls_client_check.py).
#ifndef TESSERA_TESTS_CLUSTER_TLS_FIXTURE_H_
#define TESSERA_TESTS_CLUSTER_TLS_FIXTURE_H_

#include <stdlib.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "testing/process.h"

namespace tessera {

// A new directory of test certificates (make_test_certs.sh); "" on failure.
inline std::string MakeTestCerts() {
  char dir[] = "/tmp/tessera_tls_XXXXXX";
  if (mkdtemp(dir) == nullptr) return "";
  ::tessera::testing::ChildProcess certs(
      {"/bin/bash", std::string(TESSERA_SOURCE_DIR) + "/tests/cluster/make_test_certs.sh", dir});
  return certs.WaitExit(absl::Seconds(60)) == 0 ? dir : "";
}

inline std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> TlsFlags(const std::string& dir, const std::string& name,
                                  const std::string& ca = "") {
  return {"--tls-cert", dir + "/" + name + ".pem", "--tls-key", dir + "/" + name + ".key",
          "--tls-ca", ca.empty() ? dir + "/ca.pem" : ca};
}

// TLS credentials trusting the cluster CA, presenting `name`'s certificate
// when one is given.
inline std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& dir,
                                                      const std::string& name = "") {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = Read(dir + "/ca.pem");
  if (!name.empty()) {
    o.pem_cert_chain = Read(dir + "/" + name + ".pem");
    o.pem_private_key = Read(dir + "/" + name + ".key");
  }
  return grpc::SslCredentials(o);
}

struct PythonCall {
  int exit = -1;
  std::string code;  // the gRPC status name
  std::string details;
  std::vector<int32_t> ids;
  int retry_after = -1;  // the `retry-after` trailing metadata, if sent
  std::string output;
};

inline PythonCall RunPythonClient(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      "/usr/bin/env", "python3",
      std::string(TESSERA_SOURCE_DIR) + "/tests/cluster/tls_client_check.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  ::tessera::testing::ChildProcess p(argv);
  PythonCall c;
  c.exit = p.WaitExit(absl::Seconds(90));
  c.output = p.output();
  for (absl::string_view line : absl::StrSplit(c.output, '\n')) {
    if (absl::ConsumePrefix(&line, "CODE ")) c.code = std::string(line);
    if (absl::ConsumePrefix(&line, "DETAILS ")) c.details = std::string(line);
    if (absl::ConsumePrefix(&line, "RETRY_AFTER ")) (void)absl::SimpleAtoi(line, &c.retry_after);
    if (absl::ConsumePrefix(&line, "IDS ")) {
      for (absl::string_view id : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        int32_t v = 0;
        if (absl::SimpleAtoi(id, &v)) c.ids.push_back(v);
      }
    }
  }
  return c;
}

}  // namespace tessera

#endif  // TESSERA_TESTS_CLUSTER_TLS_FIXTURE_H_
