// What the OpenAI HTTP API's cluster tests share: one real 1-worker cluster
// with --http-listen per test suite (HttpTest), raw-socket requests and
// reading of their replies, SSE and error-body helpers.
#ifndef TESSERA_TESTS_CLUSTER_HTTP_FIXTURE_H_
#define TESSERA_TESTS_CLUSTER_HTTP_FIXTURE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
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
#include "testing/cluster.h"
#include "tests/engine/test_paths.h"

namespace tessera::http_testing {

namespace v1 = ::tessera::v1;
using ::nlohmann::json;
using ::tessera::testing::Cluster;
using ::tessera::testing::ClusterOptions;
using ::tessera::testing::DefaultModelPath;
using ::tessera::testing::Generate;
using ::tessera::testing::Generation;
using ::testing::HasSubstr;
using ::testing::Not;

inline constexpr char kPrompt[] = "The capital of France is";

// A connected socket with the request sent; -1 on failure. HTTP/1.1 with
// "Connection: close" unless `http10`.
inline int SendRequest(int port, const std::string& method, const std::string& path,
                const std::string& body, bool http10 = false) {
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
      absl::StrCat(method, " ", path,
                   http10 ? " HTTP/1.0\r\nHost: localhost\r\n"
                          : " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
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
inline Reply ReadReply(int fd) {
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
inline std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&event, "data: ")) data.emplace_back(event);
  }
  return data;
}

// Checks OpenAI's error shape and returns the message.
inline std::string ErrorMessage(const Reply& r) {
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
    o.model = DefaultModelPath();
    o.workers = 1;
    o.coordinator_flags = {"--http-listen=127.0.0.1:0", "--max-seqs=64", "--max-queue=512",
                           "--max-context=256", "--served-model-name=smol,tessera-test"};
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

  static inline Cluster* cluster_ = nullptr;
  static inline int port_ = 0;
};

}  // namespace tessera::http_testing

#endif  // TESSERA_TESTS_CLUSTER_HTTP_FIXTURE_H_
