// A plaintext cluster is guarded by its join secret: a join without it is
// refused, a stage takes streams only with a proof derived from it for that
// stage and epoch, a node refuses to start without it, and a plaintext
// listener other hosts can reach needs --insecure. Every refusal is logged
// and computes nothing.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/control.grpc.pb.h"
#include "tessera/v1/stage.grpc.pb.h"
#include "testing/cluster.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tessera::testing::AddTestStageProof;
using ::tessera::testing::ChildProcess;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::kTestJoinSecret;
using ::tessera::testing::WorkerStatusOf;

class NodeAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 2;
    o.coordinator_flags = {"--max-context=512"};
    cluster_ = new Cluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static uint64_t WorkerSteps() {
    return WorkerStatusOf(cluster_->StageAddress(0)).steps() +
           WorkerStatusOf(cluster_->StageAddress(1)).steps();
  }
  static Cluster* cluster_;
};
Cluster* NodeAuthTest::cluster_ = nullptr;

TEST_F(NodeAuthTest, AJoinWithTheWrongSecretIsRefusedAndLogged) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  auto stub = v1::Control::NewStub(
      grpc::CreateChannel(cluster_->address(), grpc::InsecureChannelCredentials()));
  for (const char* secret : {"", "guessed"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto stream = stub->Session(&ctx);
    v1::WorkerMessage m;
    m.mutable_join()->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    m.mutable_join()->set_worker_address("127.0.0.1:1");
    m.mutable_join()->set_join_secret(secret);
    stream->Write(m);
    stream->WritesDone();
    v1::CoordinatorMessage reply;
    EXPECT_FALSE(stream->Read(&reply)) << "the coordinator answered a stranger";
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), AllOf(HasSubstr("wrong join secret"), HasSubstr("127.0.0.1")));
  }
  EXPECT_TRUE(cluster_->coordinator().WaitFor("refused a join", absl::Seconds(5)));
}

// What GetWorkerStatus says (the epoch) is no longer enough to write into
// a stage: the stream needs a proof of the secret for that stage and epoch.
TEST_F(NodeAuthTest, StageStreamsNeedAProofForThatStageAndEpoch) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  const uint64_t steps_before = WorkerSteps();
  const uint64_t epoch = WorkerStatusOf(cluster_->StageAddress(1)).epoch();
  ASSERT_NE(epoch, 0u);
  auto stage1 = v1::Stage::NewStub(
      grpc::CreateChannel(cluster_->StageAddress(1), grpc::InsecureChannelCredentials()));
  struct Case {
    const char* what;
    std::function<void(grpc::ClientContext*)> prove;
    grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"no proof", [](grpc::ClientContext*) {}, grpc::StatusCode::UNAUTHENTICATED},
      {"another secret's proof",
       [&](grpc::ClientContext* c) {
         c->AddMetadata(kStageProofKey, StageProofFor("guessed", "steps", epoch, 1));
       },
       grpc::StatusCode::PERMISSION_DENIED},
      {"stage 0's proof",
       [&](grpc::ClientContext* c) { AddTestStageProof(c, "steps", epoch, 0); },
       grpc::StatusCode::PERMISSION_DENIED},
      {"another epoch's proof",
       [&](grpc::ClientContext* c) { AddTestStageProof(c, "steps", epoch + 1, 1); },
       grpc::StatusCode::PERMISSION_DENIED},
      {"a Results proof", [&](grpc::ClientContext* c) { AddTestStageProof(c, "results", epoch, 1); },
       grpc::StatusCode::PERMISSION_DENIED},
  };
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    c.prove(&ctx);
    auto stream = stage1->Steps(&ctx);
    v1::StepRequest r;
    r.set_step_id(1);
    r.set_epoch(epoch);
    r.add_seqs()->set_num_tokens(1);
    stream->Write(r);
    stream->WritesDone();
    v1::StepResult answer;
    EXPECT_FALSE(stream->Read(&answer)) << c.what;
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), c.code) << c.what << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("127.0.0.1")) << c.what;
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ResultsRequest open;
    open.set_session(7);
    auto reader = stage1->Results(&ctx, open);
    v1::StepResult r;
    EXPECT_FALSE(reader->Read(&r));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    v1::WorkerStatus st;
    EXPECT_EQ(stage1->GetWorkerStatus(&ctx, v1::WorkerStatusRequest(), &st).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(cluster_->worker(1).WaitFor("refused a Steps call", absl::Seconds(5)));
  EXPECT_EQ(WorkerSteps(), steps_before) << "a refused stream made a stage compute";
}

TEST(NodeStartTest, PlaintextNeedsASecretAndOtherHostsNeedInsecure) {
  const std::string model = DefaultModelPath();
  struct Case {
    std::vector<std::string> argv;
    const char* error;
  };
  const std::vector<Case> cases = {
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", "127.0.0.1:0"},
       "a join secret is required"},
      {{TESSERA_WORKER_BINARY, "--model", model, "--coordinator", "127.0.0.1:1"},
       "a join secret is required"},
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", "0.0.0.0:0", "--join-secret",
        kTestJoinSecret},
       "--listen 0.0.0.0:0: a listener reachable from other hosts needs TLS"},
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", "127.0.0.1:0",
        "--http-listen", ":0", "--join-secret", kTestJoinSecret},
       "--http-listen :0: a listener reachable from other hosts needs TLS"},
      {{TESSERA_WORKER_BINARY, "--model", model, "--coordinator", "127.0.0.1:1", "--listen",
        "0.0.0.0:0", "--join-secret", kTestJoinSecret},
       "--listen 0.0.0.0:0: a listener reachable from other hosts needs TLS"},
      {{TESSERA_COORDINATOR_BINARY, "--model", model, "--join-secret-file", "/nonexistent"},
       "--join-secret-file=/nonexistent: cannot read it"},
  };
  for (const Case& c : cases) {
    ChildProcess p(c.argv);
    EXPECT_EQ(p.WaitExit(absl::Seconds(30)), 1) << p.output();
    EXPECT_THAT(p.output(), HasSubstr(c.error)) << c.argv[0];
    EXPECT_THAT(p.output(), Not(HasSubstr("listening on")));
  }
  // --insecure starts it, with a warning at start and in /metrics.
  ChildProcess p({TESSERA_COORDINATOR_BINARY, "--model", model, "--listen", "0.0.0.0:0",
                  "--http-listen", "0.0.0.0:0", "--join-secret", kTestJoinSecret, "--insecure"});
  std::string after;
  ASSERT_TRUE(p.WaitFor("http listening on 0.0.0.0:", absl::Seconds(30), &after)) << p.output();
  EXPECT_THAT(p.output(), HasSubstr("--listen 0.0.0.0:0: serving PLAINTEXT to other hosts"));
  EXPECT_THAT(p.output(), HasSubstr("--http-listen 0.0.0.0:0: serving PLAINTEXT to other hosts"));
  EXPECT_THAT(p.output(), HasSubstr("no --api-keys: anyone who reaches the client ports"));
  const std::string port = after.substr(0, after.find(' '));
  ChildProcess curl({"/usr/bin/env", "curl", "-sS", "http://127.0.0.1:" + port + "/metrics"});
  ASSERT_EQ(curl.WaitExit(absl::Seconds(30)), 0) << curl.output();
  EXPECT_THAT(curl.output(), HasSubstr("tessera_tls_enabled 0\n"));
  EXPECT_THAT(curl.output(), HasSubstr("tessera_api_keys_required 0\n"));
  EXPECT_THAT(curl.output(),
              HasSubstr("tessera_insecure_listener{listener=\"--listen\",address=\"0.0.0.0:0\"} 1"));
  EXPECT_THAT(curl.output(), HasSubstr("tessera_insecure_listener{listener=\"--http-listen\","
                                       "address=\"0.0.0.0:0\"} 1"));
}

}  // namespace
}  // namespace tessera
