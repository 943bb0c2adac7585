// A TLS cluster end to end: the coordinator and two workers with
// certificates from a test CA (tests/cluster/make_test_certs.sh, on
// scripts/security/make_dev_certs.sh), real handshakes, and an independent
// client (Python grpcio, tls_client_check.py) for what a user sees: the
// happy path, and each way a handshake must fail. Then the node side:
// certificates a node must refuse at start, joins without a cluster
// certificate, and stage streams from a node the plan did not name.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/control.grpc.pb.h"
#include "tessera/v1/stage.grpc.pb.h"
#include "testing/cluster.h"
#include "tests/cluster/tls_fixture.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::tessera::testing::ChildProcess;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;

class TlsClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTestCerts());
    ASSERT_FALSE(dir_->empty());
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 2;
    o.join_secret = "";
    o.coordinator_flags = TlsFlags(*dir_, "coordinator");
    o.coordinator_flags.push_back("--max-context=512");
    o.worker_flags = {TlsFlags(*dir_, "worker-0"), TlsFlags(*dir_, "worker-1")};
    o.client_credentials = Credentials(*dir_);
    cluster_ = new Cluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    std::system(("rm -rf " + *dir_).c_str());
    delete dir_;
  }

  // Steps the workers have run so far (over TLS, as a cluster node).
  static uint64_t WorkerSteps() {
    uint64_t steps = 0;
    for (int i = 0; i < 2; ++i) {
      auto stub = v1::Stage::NewStub(
          grpc::CreateChannel(cluster_->StageAddress(i), Credentials(*dir_, "client")));
      grpc::ClientContext ctx;
      v1::WorkerStatus st;
      EXPECT_TRUE(stub->GetWorkerStatus(&ctx, v1::WorkerStatusRequest(), &st).ok());
      steps += st.steps();
    }
    return steps;
  }

  static std::string* dir_;
  static Cluster* cluster_;
};
std::string* TlsClusterTest::dir_ = nullptr;
Cluster* TlsClusterTest::cluster_ = nullptr;

v1::GenerateRequest Greedy(const std::string& text, int max_tokens) {
  v1::GenerateRequest r;
  r.set_text(text);
  r.set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(0);
  return r;
}

TEST_F(TlsClusterTest, AnIndependentClientGetsTheSameTokensOverTls) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  EXPECT_THAT(cluster_->coordinator().output(), HasSubstr("TLS as coordinator"));
  const Generation ours = Generate(cluster_->InferenceStub().get(), Greedy("The capital of France is", 8));
  ASSERT_TRUE(ours.status.ok()) << ours.status.error_message();
  ASSERT_EQ(ours.ids.size(), 8u);
  // grpcio dials "localhost" (in the certificate's names) and trusts the CA.
  const std::string port = cluster_->address().substr(cluster_->address().rfind(':') + 1);
  const PythonCall py = RunPythonClient({"localhost:" + port, "--ca", *dir_ + "/ca.pem"});
  ASSERT_NE(py.exit, 3) << "grpcio is not installed; scripts/setup.sh installs it";
  ASSERT_EQ(py.exit, 0) << py.output;
  EXPECT_EQ(py.code, "OK") << py.output;
  EXPECT_EQ(py.ids, ours.ids);
  const PythonCall health =
      RunPythonClient({"localhost:" + port, "--ca", *dir_ + "/ca.pem", "--call", "health"});
  EXPECT_EQ(health.code, "OK") << health.output;
}

TEST_F(TlsClusterTest, HandshakesThatMustFailDoAndComputeNothing) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  const std::string port = cluster_->address().substr(cluster_->address().rfind(':') + 1);
  const std::string host = "localhost:" + port;
  const uint64_t steps_before = WorkerSteps();
  struct Case {
    const char* what;
    std::vector<std::string> args;
    const char* why;  // in grpcio's details
  };
  const std::string d = *dir_;
  const std::vector<Case> cases = {
      {"a client trusting another CA", {host, "--ca", d + "/other/ca.pem"}, ""},
      {"a hostname the certificate does not name",
       {host, "--ca", d + "/ca.pem", "--target-name", "not-the-coordinator.example"},
       "Hostname"},
      {"a client certificate from another CA",
       {host, "--ca", d + "/ca.pem", "--cert", d + "/other/rogue.pem", "--key",
        d + "/other/rogue.key"},
       ""},
      {"an expired client certificate",
       {host, "--ca", d + "/ca.pem", "--cert", d + "/expired.pem", "--key", d + "/expired.key"},
       ""},
      {"a plaintext client", {host}, ""},
  };
  for (const Case& c : cases) {
    const PythonCall py = RunPythonClient(c.args);
    ASSERT_NE(py.exit, 3) << "grpcio is not installed; scripts/setup.sh installs it";
    EXPECT_EQ(py.code, "UNAVAILABLE") << c.what << "\n" << py.output;
    EXPECT_THAT(py.details, HasSubstr(c.why)) << c.what;
    EXPECT_TRUE(py.ids.empty()) << c.what;
  }
  EXPECT_EQ(WorkerSteps(), steps_before) << "a refused client made the workers compute";
}

TEST_F(TlsClusterTest, AJoinWithoutAClusterCertificateIsRefusedAndLogged) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  // TLS that trusts the CA but presents no certificate of its own.
  auto stub = v1::Control::NewStub(
      grpc::CreateChannel(cluster_->address(), Credentials(*dir_)));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->Session(&ctx);
  v1::WorkerMessage m;
  m.mutable_join()->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  m.mutable_join()->set_worker_address("127.0.0.1:1");
  stream->Write(m);
  stream->WritesDone();
  v1::CoordinatorMessage reply;
  EXPECT_FALSE(stream->Read(&reply)) << "the coordinator answered a stranger";
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no client certificate"));
  EXPECT_TRUE(cluster_->coordinator().WaitFor("refused a join", absl::Seconds(5)));
}

TEST_F(TlsClusterTest, StagesTakeStreamsOnlyFromThePeerThePlanNamed) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  const uint64_t steps_before = WorkerSteps();
  // "client" holds a valid cluster certificate, but the plan names worker-0
  // upstream of stage 1 and the coordinator as the reader of Results.
  auto stage1 = v1::Stage::NewStub(
      grpc::CreateChannel(cluster_->StageAddress(1), Credentials(*dir_, "client")));
  {
    grpc::ClientContext ctx;
    auto stream = stage1->Steps(&ctx);
    v1::StepRequest r;
    r.set_step_id(1);
    r.set_epoch(1);
    stream->Write(r);
    stream->WritesDone();
    v1::StepResult answer;
    EXPECT_FALSE(stream->Read(&answer));
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), AllOf(HasSubstr("only from worker-0"), HasSubstr("client")));
  }
  {
    grpc::ClientContext ctx;
    v1::ResultsRequest open;
    open.set_session(7);
    auto reader = stage1->Results(&ctx, open);
    v1::StepResult r;
    EXPECT_FALSE(reader->Read(&r));
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("only from coordinator"));
  }
  // Without any client certificate the worker's handshake itself refuses.
  {
    auto bare = v1::Stage::NewStub(
        grpc::CreateChannel(cluster_->StageAddress(1), Credentials(*dir_)));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::WorkerStatus st;
    EXPECT_EQ(bare->GetWorkerStatus(&ctx, v1::WorkerStatusRequest(), &st).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_TRUE(cluster_->worker(1).WaitFor("refused a Steps call", absl::Seconds(5)));
  EXPECT_TRUE(cluster_->worker(1).WaitFor("refused a Results call", absl::Seconds(5)));
  EXPECT_EQ(WorkerSteps(), steps_before);
  // The pipeline itself still serves.
  const Generation g = Generate(cluster_->InferenceStub().get(), Greedy("Hello", 2));
  EXPECT_TRUE(g.status.ok()) << g.status.error_message();
}

TEST_F(TlsClusterTest, ANodeRefusesCertificatesItCannotStandOn) {
  const std::string d = *dir_;
  struct Case {
    std::vector<std::string> tls;
    const char* error;
  };
  const std::vector<Case> cases = {
      {TlsFlags(d, "expired"), "certificate has expired"},
      {TlsFlags(d + "/other", "rogue", d + "/ca.pem"), "does not verify against --tls-ca"},
      {{"--tls-cert", d + "/worker-0.pem", "--tls-key", d + "/worker-1.key", "--tls-ca",
        d + "/ca.pem"},
       "is not the key of the certificate"},
      {{"--tls-cert", d + "/worker-0.pem"}, "go together"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {TESSERA_WORKER_BINARY, "--model", DefaultModelPath(),
                                     "--coordinator", cluster_->address()};
    argv.insert(argv.end(), c.tls.begin(), c.tls.end());
    ChildProcess p(argv);
    EXPECT_EQ(p.WaitExit(absl::Seconds(30)), 1) << p.output();
    EXPECT_THAT(p.output(), HasSubstr(c.error));
    EXPECT_THAT(p.output(), ::testing::Not(HasSubstr("joined")));
  }
}

}  // namespace
}  // namespace tessera
