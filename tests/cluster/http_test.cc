// The coordinator's OpenAI-compatible HTTP API against a real 1-worker
// cluster, spoken to over raw sockets (so the test checks the bytes on the
// wire, not a client library's reading of them), plus the official `openai`
// Python client when it is installed.
//
// References are independent of the HTTP code: the gRPC Generate API's text
// for the same request, hand-written expectations of OpenAI's JSON shapes,
// and status codes fixed by the API contract.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster/cluster.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

using ::nlohmann::json;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::testing::HasSubstr;

constexpr char kPrompt[] = "The capital of France is";

std::string ModelPath() {
  const char* env = std::getenv("TESSERA_MODEL");
  return env != nullptr ? env : DefaultModelPath();
}

// A connected socket with the request sent; -1 on failure.
int SendRequest(int port, const std::string& method, const std::string& path,
                const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
                   "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                   body);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;  // de-chunked
};

// Reads the whole response (the server closes after it: Connection: close).
Reply ReadReply(int fd) {
  std::string raw;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    raw.append(buf, n);
  }
  close(fd);
  Reply r;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = raw.substr(0, end);
  std::vector<std::string> first = absl::StrSplit(r.head.substr(0, r.head.find("\r\n")), ' ');
  if (first.size() >= 2) (void)absl::SimpleAtoi(first[1], &r.status);
  std::string rest = raw.substr(end + 4);
  if (r.head.find("Transfer-Encoding: chunked") == std::string::npos) {
    r.body = rest;
    return r;
  }
  size_t pos = 0;
  for (;;) {
    const size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(rest.substr(pos, eol - pos), &size) || size == 0) break;
    r.body += rest.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return r;
}

Reply Request(int port, const std::string& method, const std::string& path,
              const std::string& body = "") {
  const int fd = SendRequest(port, method, path, body);
  if (fd < 0) return Reply();
  return ReadReply(fd);
}

// The JSON payloads of an SSE body, "[DONE]" included as a string.
std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&event, "data: ")) data.emplace_back(event);
  }
  return data;
}

// Checks OpenAI's error shape and returns the message.
std::string ErrorMessage(const Reply& r) {
  const json j = json::parse(r.body, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
  if (!j.is_object() || !j.contains("error")) return "";
  const json& e = j["error"];
  for (const char* key : {"message", "type", "param", "code"}) {
    EXPECT_TRUE(e.contains(key)) << key << " missing in " << r.body;
  }
  return e.value("message", "");
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.model = ModelPath();
    o.workers = 1;
    o.coordinator_flags = {"--http-listen=127.0.0.1:0", "--max-seqs=64", "--max-queue=512",
                           "--max-context=256"};
    cluster_ = new Cluster(o);
    port_ = HttpPort(*cluster_);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static int HttpPort(Cluster& c) {
    std::string after;
    int port = 0;
    if (!c.coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(20), &after)) {
      return 0;
    }
    (void)absl::SimpleAtoi(after.substr(0, after.find(' ')), &port);
    return port;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_->ready()) << cluster_->coordinator().output();
    ASSERT_GT(port_, 0) << cluster_->coordinator().output();
  }
  // The greedy text gRPC Generate gives for kPrompt.
  static std::string GrpcText(int32_t max_tokens) {
    SamplingParams p;
    p.temperature = 0;
    Generation g = Generate(cluster_->InferenceStub().get(),
                            tessera::testing::TextRequest(kPrompt, max_tokens, p));
    EXPECT_TRUE(g.status.ok()) << g.status.error_message();
    return g.text;
  }

  static Cluster* cluster_;
  static int port_;
};
Cluster* HttpTest::cluster_ = nullptr;
int HttpTest::port_ = 0;

TEST_F(HttpTest, ListsTheModel) {
  const Reply r = Request(port_, "GET", "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(j["data"][0]["object"], "model");
}

TEST_F(HttpTest, CompletionMatchesGrpcGenerate) {
  const std::string expected = GrpcText(8);
  ASSERT_FALSE(expected.empty());
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"model", "x"}, {"prompt", kPrompt}, {"max_tokens", 8},
                               {"temperature", 0}, {"logprobs", 1}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.head, HasSubstr("Content-Length: "));
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  const json& c = j["choices"][0];
  EXPECT_EQ(c["text"], expected);
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + 8);
  ASSERT_EQ(c["logprobs"]["token_logprobs"].size(), 8u);
  std::string joined;
  for (const json& t : c["logprobs"]["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, expected);  // ASCII continuation: pieces concatenate to the text
  for (const json& lp : c["logprobs"]["token_logprobs"]) EXPECT_LE(lp.get<double>(), 0.0);
}

TEST_F(HttpTest, StreamedCompletionGivesTheSameText) {
  const std::string expected = GrpcText(8);
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                               {"stream", true}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.head, HasSubstr("Content-Type: text/event-stream"));
  const std::vector<std::string> data = SseData(r.body);
  ASSERT_GE(data.size(), 2u) << r.body;
  EXPECT_EQ(data.back(), "[DONE]");
  std::string text, finish;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json j = json::parse(data[i]);
    text += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, expected);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(json::parse(data[data.size() - 2])["usage"]["completion_tokens"], 8);
}

TEST_F(HttpTest, StopStringCutsTheText) {
  const std::string full = GrpcText(8);
  const size_t dot = full.find('.');
  ASSERT_NE(dot, std::string::npos) << full;
  const Reply r = Request(port_, "POST", "/v1/completions",
                          json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                               {"stop", "."}}
                              .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["text"], full.substr(0, dot));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST_F(HttpTest, ChatCompletionStreamedAndNot) {
  const json request = {{"messages", {{{"role", "user"}, {"content", "Say hello."}}}},
                        {"max_tokens", 6}, {"temperature", 0}};
  const Reply r = Request(port_, "POST", "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string text = j["choices"][0]["message"]["content"];
  EXPECT_FALSE(text.empty());

  json streaming = request;
  streaming["stream"] = true;
  const Reply s = Request(port_, "POST", "/v1/chat/completions", streaming.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  const std::vector<std::string> data = SseData(s.body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(json::parse(data[0])["choices"][0]["delta"]["role"], "assistant");
  std::string streamed;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json c = json::parse(data[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    streamed += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(data.back(), "[DONE]");
}

TEST_F(HttpTest, BadRequestsGet400InOpenAiShape) {
  struct Case {
    std::string body;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {json{{"prompt", kPrompt}, {"temperature", -1}}.dump(), "temperature"},
      {json{{"prompt", kPrompt}, {"temperature", "hot"}}.dump(), "temperature"},
      {json{{"prompt", kPrompt}, {"n", 2}}.dump(), "n"},
      {"{\"prompt\": ", "JSON"},
      {json{{"max_tokens", 4}}.dump(), "prompt"},
  };
  for (const Case& c : cases) {
    const Reply r = Request(port_, "POST", "/v1/completions", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.message_part)) << c.body;
  }
  const Reply chat = Request(port_, "POST", "/v1/chat/completions",
                             json{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}.dump());
  EXPECT_EQ(chat.status, 400);
  EXPECT_THAT(ErrorMessage(chat), HasSubstr("role"));
  EXPECT_EQ(Request(port_, "GET", "/v1/nothing").status, 404);
}

TEST_F(HttpTest, ThreeHundredConcurrentStreamsAllComplete) {
  constexpr int kStreams = 300;
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    const json body = {{"prompt", absl::StrCat("Count to ", i % 10, ":")},
                       {"max_tokens", 4}, {"temperature", 0.5}, {"seed", i},
                       {"ignore_eos", true}, {"stream", true}};
    const int fd = SendRequest(port_, "POST", "/v1/completions", body.dump());
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  // Every request is open at once; read them in turn (each is small enough
  // to wait in socket buffers while others are read).
  int complete = 0;
  for (int i = 0; i < kStreams; ++i) {
    const Reply r = ReadReply(fds[i]);
    const std::vector<std::string> data = SseData(r.body);
    if (r.status == 200 && !data.empty() && data.back() == "[DONE]" && data.size() >= 2 &&
        json::parse(data[data.size() - 2])["usage"]["completion_tokens"] == 4) {
      ++complete;
    } else {
      ADD_FAILURE() << "stream " << i << ": " << r.status << " " << r.body.substr(0, 300);
    }
  }
  EXPECT_EQ(complete, kStreams);
}

TEST_F(HttpTest, OfficialOpenAiClientWorksUnchanged) {
  const std::string expected = GrpcText(6);
  const std::string script =
      std::string(TESSERA_SOURCE_DIR) + "/tests/cluster/openai_client_check.py";
  const std::string base = absl::StrCat("http://127.0.0.1:", port_, "/v1");
  const pid_t pid = fork();
  if (pid == 0) {
    execlp("python3", "python3", script.c_str(), base.c_str(), kPrompt, expected.c_str(), "6",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3 || WEXITSTATUS(status) == 127) {
    std::printf("SKIPPED: openai package not installed (pip install openai)\n");
    GTEST_SKIP() << "openai package not installed";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << "openai_client_check.py failed; see its output above";
}

// A separate cluster whose HTTP admission limit is 2.
TEST(HttpAdmissionTest, PastMaxStreamsGets429AtOnce) {
  ClusterOptions o;
  o.model = ModelPath();
  o.workers = 1;
  o.coordinator_flags = {"--http-listen=127.0.0.1:0", "--http-max-streams=2",
                         "--max-context=256"};
  Cluster cluster(o);
  ASSERT_TRUE(cluster.ready()) << cluster.coordinator().output();
  std::string after;
  ASSERT_TRUE(cluster.coordinator().WaitFor("http listening on 127.0.0.1:", absl::Seconds(5),
                                            &after));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(after.substr(0, after.find(' ')), &port));

  // Two long streams hold both slots.
  const json long_body = {{"prompt", kPrompt}, {"max_tokens", 200}, {"ignore_eos", true},
                          {"stream", true}};
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(SendRequest(port, "POST", "/v1/completions", long_body.dump()));
    ASSERT_GE(held.back(), 0);
    // Wait for the response head, so the slot is surely taken.
    pollfd p{held.back(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1);
  }
  const absl::Time start = absl::Now();
  const Reply third = Request(port, "POST", "/v1/completions",
                              json{{"prompt", kPrompt}, {"max_tokens", 2}}.dump());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_THAT(ErrorMessage(third), HasSubstr("--http-max-streams"));
  EXPECT_LT(took, absl::Seconds(1)) << "refused at once, not after a stream ended";

  // Closing the held streams cancels them and frees the slots.
  for (int fd : held) close(fd);
  EXPECT_TRUE(cluster.coordinator().WaitFor("HTTP client went away", absl::Seconds(5)));
  Reply again;
  for (int i = 0; i < 50; ++i) {
    again = Request(port, "POST", "/v1/completions",
                    json{{"prompt", kPrompt}, {"max_tokens", 2}}.dump());
    if (again.status != 429) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(again.status, 200) << again.body;
}

}  // namespace
}  // namespace tessera
