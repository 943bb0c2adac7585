// API keys, quotas and the audit log on a real TLS cluster, from clients
// that share no code with Tessera: curl and the openai package over HTTPS,
// Python grpcio over TLS. Keys come from scripts/security/new_api_key.sh.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "tessera/v1/stage.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/inference.grpc.pb.h"
#include "testing/cluster.h"
#include "tests/cluster/tls_fixture.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tessera::testing::ChildProcess;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generation;

constexpr char kPrompt[] = "The capital of France is";

struct Curl {
  int exit = -1;
  int status = 0;
  std::string headers;  // lower-cased
  std::string body;
};

class ApiAccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTestCerts());
    ASSERT_FALSE(dir_->empty());
    keys_path_ = new std::string(*dir_ + "/api_keys");
    audit_path_ = new std::string(*dir_ + "/audit.jsonl");
    keys_ = new std::map<std::string, std::string>;
    for (const std::vector<std::string>& k :
         std::vector<std::vector<std::string>>{{"ops", "admin"}, {"alice", "rpm=3"},
                                               {"bob", "streams=1"}, {"carol"}, {"dave"}}) {
      std::vector<std::string> argv = {
          "/bin/bash", std::string(TESSERA_SOURCE_DIR) + "/scripts/security/new_api_key.sh",
          *keys_path_};
      argv.insert(argv.end(), k.begin(), k.end());
      ChildProcess p(argv);
      ASSERT_EQ(p.WaitExit(absl::Seconds(10)), 0) << p.output();
      (*keys_)[k[0]] = std::string(absl::StripAsciiWhitespace(p.output()));
    }
    ClusterOptions o;
    o.model = DefaultModelPath();
    o.workers = 1;
    o.join_secret = "";
    o.coordinator_flags = TlsFlags(*dir_, "coordinator");
    for (const std::string& f : std::vector<std::string>{
             "--max-context=512", "--http-listen=127.0.0.1:0", "--api-keys=" + *keys_path_,
             "--audit-log=" + *audit_path_}) {
      o.coordinator_flags.push_back(f);
    }
    o.worker_flags = {TlsFlags(*dir_, "worker-0")};
    o.client_credentials = Credentials(*dir_);
    cluster_ = new Cluster(o);
    std::string after;
    if (cluster_->coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(20),
                                        &after)) {
      (void)absl::SimpleAtoi(after.substr(0, after.find(' ')), &http_port_);
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    std::system(("rm -rf " + *dir_).c_str());
    delete dir_;
    delete keys_path_;
    delete audit_path_;
    delete keys_;
  }

  static std::string Key(const std::string& id) { return keys_->at(id); }
  static std::string GrpcAddress() {
    return "localhost:" + cluster_->address().substr(cluster_->address().rfind(':') + 1);
  }
  static std::string Url(const std::string& path) {
    return absl::StrCat("https://localhost:", http_port_, path);
  }

  // One curl request; `key` empty: no Authorization header.
  static Curl CurlCompletion(const std::string& key, int max_tokens = 4,
                             const std::string& ca = "") {
    std::vector<std::string> argv = {"/usr/bin/env", "curl", "-sS", "-i", "--max-time", "60",
                                      "--cacert", ca.empty() ? *dir_ + "/ca.pem" : ca,
                                      "-H", "Content-Type: application/json", "-d",
                                      absl::StrCat(R"({"model":"SmolLM2-135M-Instruct.Q4_1",)",
                                                   R"("prompt":")", kPrompt,
                                                   R"(","max_tokens":)", max_tokens,
                                                   R"(,"temperature":0})")};
    if (!key.empty()) {
      argv.push_back("-H");
      argv.push_back("Authorization: Bearer " + key);
    }
    argv.push_back(Url("/v1/completions"));
    ChildProcess p(argv);
    Curl c;
    c.exit = p.WaitExit(absl::Seconds(90));
    const std::string out = p.output();
    const size_t split = out.find("\r\n\r\n");
    if (split == std::string::npos) {
      c.body = out;
      return c;
    }
    c.headers = absl::AsciiStrToLower(out.substr(0, split));
    c.body = out.substr(split + 4);
    (void)absl::SimpleAtoi(out.substr(9, 3), &c.status);
    return c;
  }

  // GET `path` with curl over HTTPS; `key` empty: no Authorization header.
  static Curl CurlGet(const std::string& path, const std::string& key) {
    std::vector<std::string> argv = {"/usr/bin/env", "curl", "-sS", "-i", "--max-time", "30",
                                      "--cacert", *dir_ + "/ca.pem"};
    if (!key.empty()) {
      argv.push_back("-H");
      argv.push_back("Authorization: Bearer " + key);
    }
    argv.push_back(Url(path));
    ChildProcess p(argv);
    Curl c;
    c.exit = p.WaitExit(absl::Seconds(60));
    const std::string out = p.output();
    const size_t split = out.find("\r\n\r\n");
    if (split == std::string::npos) return c;
    c.headers = absl::AsciiStrToLower(out.substr(0, split));
    c.body = out.substr(split + 4);
    (void)absl::SimpleAtoi(out.substr(9, 3), &c.status);
    return c;
  }

  // Generate over TLS with `key`, from our own client.
  static Generation OurGenerate(const std::string& key, int max_tokens) {
    auto stub = cluster_->InferenceStub();
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::GenerateRequest r;
    r.set_text(kPrompt);
    r.set_max_tokens(max_tokens);
    r.mutable_sampling()->set_temperature(0);
    Generation g;
    auto reader = stub->Generate(&ctx, r);
    v1::GenerateResponse resp;
    while (reader->Read(&resp)) {
      g.ids.insert(g.ids.end(), resp.token_ids().begin(), resp.token_ids().end());
      g.text += resp.text();
    }
    g.status = reader->Finish();
    return g;
  }

  static uint64_t WorkerSteps() {
    auto stub = v1::Stage::NewStub(
        grpc::CreateChannel(StageAddress(), Credentials(*dir_, "client")));
    grpc::ClientContext ctx;
    v1::WorkerStatus st;
    EXPECT_TRUE(stub->GetWorkerStatus(&ctx, v1::WorkerStatusRequest(), &st).ok());
    return st.steps();
  }
  static std::string StageAddress() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + Key("ops"));
    v1::ModelInfo info;
    cluster_->InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
    return info.stages_size() > 0 ? info.stages(0).worker_address() : "";
  }

  static std::vector<nlohmann::json> AuditLines(const std::string& path) {
    std::ifstream in(path);
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static std::string* dir_;
  static std::string* keys_path_;
  static std::string* audit_path_;
  static std::map<std::string, std::string>* keys_;
  static Cluster* cluster_;
  static int http_port_;
};
std::string* ApiAccessTest::dir_ = nullptr;
std::string* ApiAccessTest::keys_path_ = nullptr;
std::string* ApiAccessTest::audit_path_ = nullptr;
std::map<std::string, std::string>* ApiAccessTest::keys_ = nullptr;
Cluster* ApiAccessTest::cluster_ = nullptr;
int ApiAccessTest::http_port_ = 0;

TEST_F(ApiAccessTest, OnlyKeyHoldersAreServedAndStrangersCostNothing) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  ASSERT_GT(http_port_, 0) << cluster_->coordinator().output();
  const Generation ours = OurGenerate(Key("carol"), 4);
  ASSERT_TRUE(ours.status.ok()) << ours.status.error_message();
  const uint64_t steps_before = WorkerSteps();

  const Curl none = CurlCompletion("");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_THAT(none.headers, HasSubstr("www-authenticate: bearer"));
  const nlohmann::json error = nlohmann::json::parse(none.body, nullptr, false);
  ASSERT_TRUE(error.is_object()) << none.body;
  EXPECT_EQ(error["error"]["code"], "invalid_api_key");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  EXPECT_THAT(error["error"]["message"].get<std::string>(), HasSubstr("missing API key"));
  const Curl wrong = CurlCompletion("tsk-not-a-key");
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_THAT(wrong.body, HasSubstr("invalid API key"));
  EXPECT_THAT(wrong.body, Not(HasSubstr("tsk-not-a-key")));
  const Curl other_ca = CurlCompletion(Key("carol"), 4, *dir_ + "/other/ca.pem");
  EXPECT_EQ(other_ca.exit, 60) << other_ca.body;  // peer certificate cannot be authenticated
  EXPECT_EQ(other_ca.status, 0);

  for (const std::string& key : {std::string(), std::string("tsk-not-a-key")}) {
    std::vector<std::string> args = {GrpcAddress(), "--ca", *dir_ + "/ca.pem"};
    if (!key.empty()) {
      args.push_back("--api-key");
      args.push_back(key);
    }
    const PythonCall py = RunPythonClient(args);
    ASSERT_NE(py.exit, 3) << "grpcio is not installed; scripts/setup.sh installs it";
    EXPECT_EQ(py.code, "UNAUTHENTICATED") << py.output;
  }
  // Health stays open for load balancers.
  EXPECT_EQ(RunPythonClient({GrpcAddress(), "--ca", *dir_ + "/ca.pem", "--call", "health"}).code,
            "OK");
  EXPECT_EQ(WorkerSteps(), steps_before) << "an unauthenticated call made the worker compute";

  // Key holders: curl, grpcio and the openai package get the same text.
  const Curl ok = CurlCompletion(Key("carol"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(nlohmann::json::parse(ok.body)["choices"][0]["text"], ours.text);
  const PythonCall py =
      RunPythonClient({GrpcAddress(), "--ca", *dir_ + "/ca.pem", "--api-key", Key("carol"),
                       "--text", kPrompt, "--max-tokens", "4"});
  EXPECT_EQ(py.code, "OK") << py.output;
  EXPECT_EQ(py.ids, ours.ids);
  const Generation longer = OurGenerate(Key("carol"), 6);
  ChildProcess openai({"/usr/bin/env", "python3",
                       std::string(TESSERA_SOURCE_DIR) + "/tests/cluster/openai_client_check.py",
                       Url("/v1"), kPrompt, longer.text, "6", Key("carol"), *dir_ + "/ca.pem"});
  const int openai_exit = openai.WaitExit(absl::Seconds(180));
  ASSERT_NE(openai_exit, 3) << "the openai package is not installed; scripts/setup.sh installs it";
  EXPECT_EQ(openai_exit, 0) << openai.output();
}

// `tessera generate` reaches a TLS coordinator with --tls-ca and sends the
// key from $TESSERA_API_KEY (kept out of the process list).
TEST_F(ApiAccessTest, TheCliSpeaksTlsAndSendsTheKey) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  const Generation ours = OurGenerate(Key("carol"), 4);
  ASSERT_TRUE(ours.status.ok()) << ours.status.error_message();
  const std::vector<std::string> base = {
      "/usr/bin/env", "tessera-no-such-var=1", TESSERA_BINARY, "generate", "--coordinator",
      GrpcAddress(), "--tls-ca", *dir_ + "/ca.pem", "--prompt", kPrompt, "--max-tokens", "4",
      "--temperature", "0"};
  std::vector<std::string> with_key = base;
  with_key[1] = "TESSERA_API_KEY=" + Key("carol");
  ChildProcess ok(with_key);
  EXPECT_EQ(ok.WaitExit(absl::Seconds(60)), 0) << ok.output();
  EXPECT_THAT(ok.output(), HasSubstr(ours.text));
  ChildProcess refused(base);
  EXPECT_EQ(refused.WaitExit(absl::Seconds(60)), 1) << refused.output();
  EXPECT_THAT(refused.output(), HasSubstr("UNAUTHENTICATED"));
}

TEST_F(ApiAccessTest, OnlyAdminKeysSeeTheClusterLayout) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  for (const char* id : {"carol", "ops"}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + Key(id));
    v1::ModelInfo info;
    ASSERT_TRUE(cluster_->InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
    EXPECT_EQ(info.n_layer(), 30) << id;
    EXPECT_TRUE(info.ready()) << id;
    EXPECT_EQ(info.stages_size(), std::string(id) == "ops" ? 1 : 0) << id;
  }
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  EXPECT_EQ(cluster_->InferenceStub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// `tessera status` over TLS: an admin key sees the replica and its worker;
// another key is refused PERMISSION_DENIED, no key UNAUTHENTICATED.
TEST_F(ApiAccessTest, TesseraStatusNeedsAnAdminKey) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  auto status = [&](const std::string& key) {
    ChildProcess p({"/usr/bin/env", key.empty() ? "tessera-no-such-var=1" : "TESSERA_API_KEY=" + key,
                    TESSERA_BINARY, "status", "--coordinator", GrpcAddress(), "--tls-ca",
                    *dir_ + "/ca.pem"});
    const int rc = p.WaitExit(absl::Seconds(30));
    return std::make_pair(rc, p.output());
  };
  const auto [admin_rc, admin_out] = status(Key("ops"));
  EXPECT_EQ(admin_rc, 0) << admin_out;
  EXPECT_THAT(admin_out, HasSubstr("1 of 1 replica(s) serving, 1 worker(s)"));
  EXPECT_THAT(admin_out, HasSubstr(cluster_->StageAddress(0)));
  const auto [user_rc, user_out] = status(Key("carol"));
  EXPECT_EQ(user_rc, 1) << user_out;
  EXPECT_THAT(user_out, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(user_out, HasSubstr("not an admin key"));
  const auto [none_rc, none_out] = status("");
  EXPECT_EQ(none_rc, 1) << none_out;
  EXPECT_THAT(none_out, HasSubstr("UNAUTHENTICATED"));
}

// Prometheus scrapes /metrics with an admin key.
TEST_F(ApiAccessTest, MetricsNeedAnAdminKey) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  EXPECT_EQ(CurlGet("/metrics", "").status, 401);
  const Curl user = CurlGet("/metrics", Key("carol"));
  EXPECT_EQ(user.status, 403) << user.body;
  EXPECT_THAT(user.body, HasSubstr("not an admin key"));
  const Curl admin = CurlGet("/metrics", Key("ops"));
  ASSERT_EQ(admin.status, 200) << admin.body;
  EXPECT_THAT(admin.headers, HasSubstr("content-type: text/plain; version=0.0.4"));
  EXPECT_THAT(admin.body, HasSubstr("tessera_tls_enabled 1\n"));
  EXPECT_THAT(admin.body, HasSubstr("tessera_api_keys_required 1\n"));
  EXPECT_THAT(admin.body, Not(HasSubstr("tessera_insecure_listener{")));
}

TEST_F(ApiAccessTest, QuotasAnswer429WithRetryAfterAndSpareOtherKeys) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  // alice: 3 requests per minute.
  for (int i = 0; i < 3; ++i) {
    const Generation g = OurGenerate(Key("alice"), 1);
    ASSERT_TRUE(g.status.ok()) << i << ": " << g.status.error_message();
  }
  const PythonCall py = RunPythonClient(
      {GrpcAddress(), "--ca", *dir_ + "/ca.pem", "--api-key", Key("alice"), "--max-tokens", "1"});
  EXPECT_EQ(py.code, "RESOURCE_EXHAUSTED") << py.output;
  EXPECT_THAT(py.details, HasSubstr("3 requests per minute"));
  EXPECT_GE(py.retry_after, 1) << py.output;
  EXPECT_LE(py.retry_after, 60) << py.output;
  const Curl limited = CurlCompletion(Key("alice"));
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_THAT(limited.headers, HasSubstr("retry-after: "));
  EXPECT_EQ(nlohmann::json::parse(limited.body)["error"]["code"], "rate_limit_exceeded");
  EXPECT_EQ(CurlCompletion(Key("carol")).status, 200) << "another key was limited";

  // bob: one stream at a time.
  std::atomic<bool> streaming{false};
  grpc::ClientContext long_ctx;
  long_ctx.AddMetadata("authorization", "Bearer " + Key("bob"));
  v1::GenerateRequest r;
  r.set_text(kPrompt);
  r.set_max_tokens(400);
  r.set_ignore_eos(true);
  auto stub = cluster_->InferenceStub();
  auto reader = stub->Generate(&long_ctx, r);
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));  // the stream is running
  const Curl second = CurlCompletion(Key("bob"));
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_THAT(second.body, HasSubstr("streams open"));
  long_ctx.TryCancel();
  while (reader->Read(&first)) {
  }
  reader->Finish();
  // The cancelled stream's slot comes back.
  Curl after;
  for (int i = 0; i < 50 && after.status != 200; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    after = CurlCompletion(Key("bob"));
  }
  EXPECT_EQ(after.status, 200) << after.body;
}

TEST_F(ApiAccessTest, SighupRevokesKeysAndReopensTheAuditLog) {
  ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
  ASSERT_EQ(CurlCompletion(Key("dave")).status, 200);
  // Revoke dave: his line leaves the file; logrotate moves the audit log.
  {
    std::ifstream in(*keys_path_);
    std::string kept;
    for (std::string line; std::getline(in, line);) {
      if (!absl::StartsWith(line, "dave ")) kept += line + "\n";
    }
    std::ofstream(*keys_path_) << kept;
  }
  const std::string rotated = *audit_path_ + ".1";
  ASSERT_EQ(std::rename(audit_path_->c_str(), rotated.c_str()), 0);
  ASSERT_EQ(kill(cluster_->coordinator().pid(), SIGHUP), 0);
  ASSERT_TRUE(cluster_->coordinator().WaitFor("SIGHUP: 4 API key(s) in force", absl::Seconds(10)))
      << cluster_->coordinator().output();
  const Curl revoked = CurlCompletion(Key("dave"));
  EXPECT_EQ(revoked.status, 401) << revoked.body;
  EXPECT_THAT(revoked.body, HasSubstr("revoked"));
  const PythonCall py =
      RunPythonClient({GrpcAddress(), "--ca", *dir_ + "/ca.pem", "--api-key", Key("dave")});
  EXPECT_EQ(py.code, "UNAUTHENTICATED") << py.output;
  ASSERT_EQ(CurlCompletion(Key("carol"), 3).status, 200);

  // The old file holds what came before the rotation, the new one what came
  // after; every line names the key by id and never holds a key or a prompt.
  const std::vector<nlohmann::json> before = AuditLines(rotated);
  const std::vector<nlohmann::json> after = AuditLines(*audit_path_);
  ASSERT_FALSE(before.empty());
  ASSERT_EQ(after.size(), 3u);  // dave (curl), dave (grpcio), carol
  EXPECT_EQ(after[0]["status"], "UNAUTHENTICATED");
  EXPECT_EQ(after[0]["api"], "http");
  EXPECT_EQ(after[1]["api"], "grpc");
  EXPECT_EQ(after[2]["key_id"], "carol");
  EXPECT_EQ(after[2]["status"], "OK");
  EXPECT_EQ(after[2]["finish_reason"], "length");
  EXPECT_EQ(after[2]["completion_tokens"], 3);
  EXPECT_GT(after[2]["prompt_tokens"].get<int>(), 0);
  EXPECT_THAT(after[2]["client"].get<std::string>(), HasSubstr("127.0.0.1"));
  EXPECT_EQ(after[2]["model"], "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_GT(after[2]["latency_ms"].get<double>(), 0);
  bool saw_rate_limit = false;
  for (const std::vector<nlohmann::json>* lines : {&before, &after}) {
    for (const nlohmann::json& line : *lines) {
      const std::string text = line.dump();
      EXPECT_THAT(text, Not(HasSubstr("tsk-"))) << "a key reached the audit log";
      EXPECT_FALSE(line.contains("prompt")) << "a prompt without --audit-prompts";
      saw_rate_limit |= line["status"] == "RESOURCE_EXHAUSTED";
    }
  }
  EXPECT_TRUE(saw_rate_limit) << "the quota refusals were not audited";
}

}  // namespace
}  // namespace tessera
