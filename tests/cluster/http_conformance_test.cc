// HttpServer against HTTP/1.1 as clients speak it (RFC 9110 / 9112), with
// raw loopback sockets and a handler that echoes what it was given:
// keep-alive, pipelined requests answered in order, chunked request bodies
// (with extensions and trailers), `Expect: 100-continue`, HTTP/1.0 with and
// without keep-alive, and the refusals (417, 505, 413 for a chunked body,
// 400 for a transfer coding other than chunked). Expected bytes are written
// by hand from the RFCs, not taken from the server.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/raw_socket.h"
#include "testing/status_matchers.h"

namespace tessera {
namespace {

using ::tessera::testing::Connect;
using ::tessera::testing::IsOk;
using ::tessera::testing::ReadResult;
using ::tessera::testing::ReadUntil;
using ::tessera::testing::SendAll;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The number of whole Content-Length responses at the start of `data`.
int WholeResponses(const std::string& data) {
  int count = 0;
  size_t at = 0;
  for (;;) {
    const size_t end = data.find("\r\n\r\n", at);
    if (end == std::string::npos) return count;
    const size_t cl = data.find("Content-Length: ", at);
    if (cl == std::string::npos || cl > end) return count;
    size_t length = 0;
    if (!absl::SimpleAtoi(data.substr(cl + 16, data.find("\r\n", cl) - cl - 16), &length)) {
      return count;
    }
    if (data.size() < end + 4 + length) return count;
    ++count;
    at = end + 4 + length;
  }
}

std::function<bool(const std::string&)> Responses(int n) {
  return [n](const std::string& d) { return WholeResponses(d) >= n; };
}

class HttpConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.max_body_bytes = 1024;
    server_ = std::make_unique<HttpServer>(options_);
    // Answers "<method> <path>?<query> v1.<minor> [<body>]".
    server_->Route("POST", "/echo", [](const HttpRequest& r, const Waker&) {
      HandlerResult result;
      result.response.content_type = "text/plain";
      result.response.body = absl::StrCat(r.method, " ", r.path, "?", r.query, " v1.",
                                          r.http_minor, " [", r.body, "]");
      return result;
    });
    server_->Route("GET", "/echo", [](const HttpRequest& r, const Waker&) {
      HandlerResult result;
      result.response.content_type = "text/plain";
      const auto host = r.headers.find("host");
      result.response.body = absl::StrCat("GET ", r.path, " host=",
                                          host == r.headers.end() ? "-" : host->second);
      return result;
    });
    ASSERT_THAT(server_->Start("127.0.0.1:0"), IsOk());
  }

  HttpServerOptions options_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpConformanceTest, KeepAliveServesRequestsOneAfterAnother) {
  UniqueFd fd = Connect(server_->port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(SendAll(fd, absl::StrCat("GET /echo HTTP/1.1\r\nHost: h", i, "\r\n\r\n")));
    const ReadResult r = ReadUntil(fd, Responses(1));
    EXPECT_THAT(r.data, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(r.data, HasSubstr("Connection: keep-alive\r\n"));
    EXPECT_THAT(r.data, HasSubstr(absl::StrCat("\r\n\r\nGET /echo host=h", i)));
    EXPECT_FALSE(r.eof);
  }
}

TEST_F(HttpConformanceTest, PipelinedRequestsAreAnsweredInOrder) {
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd,
                      "POST /echo?n=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"
                      "GET /echo HTTP/1.1\r\nHost: second\r\n\r\n"
                      "POST /echo?n=3 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nthree"));
  const ReadResult r = ReadUntil(fd, Responses(3));
  ASSERT_EQ(WholeResponses(r.data), 3) << r.data;
  const size_t a = r.data.find("POST /echo?n=1 v1.1 [one]");
  const size_t b = r.data.find("GET /echo host=second");
  const size_t c = r.data.find("POST /echo?n=3 v1.1 [three]");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_FALSE(r.eof);
}

TEST_F(HttpConformanceTest, ChunkedRequestBodiesAreDecoded) {
  UniqueFd fd = Connect(server_->port());
  // Three chunks, one with an extension, then a trailer field.
  ASSERT_TRUE(SendAll(fd,
                      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n"
                      "X-Trailer: t\r\n\r\n"));
  const ReadResult r = ReadUntil(fd, Responses(1));
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r.data, HasSubstr("[hello 0123456789]"));
  // And the connection goes on.
  ASSERT_TRUE(SendAll(fd, "GET /echo HTTP/1.1\r\nHost: after\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd, Responses(1)).data, HasSubstr("host=after"));
}

TEST_F(HttpConformanceTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd,
                      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                      "Expect: 100-continue\r\n\r\n"));
  // The client sends nothing more until the interim response arrives.
  const ReadResult interim = ReadUntil(
      fd, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(interim.data, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(SendAll(fd, "body"));
  const ReadResult r = ReadUntil(fd, Responses(1));
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r.data, HasSubstr("[body]"));
}

TEST_F(HttpConformanceTest, AnUnknownExpectationGets417) {
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd,
                      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                      "Expect: something-else\r\n\r\nbody"));
  const ReadResult r = ReadUntil(fd, Responses(1));
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 417 Expectation Failed\r\n"));
}

TEST_F(HttpConformanceTest, Http10ClosesAfterTheResponseUnlessAskedToKeepAlive) {
  {
    UniqueFd fd = Connect(server_->port());
    ASSERT_TRUE(SendAll(fd, "POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"));
    const ReadResult r = ReadUntil(fd, [](const std::string&) { return false; });
    EXPECT_TRUE(r.eof) << "an HTTP/1.0 connection closes after its response";
    EXPECT_THAT(r.data, HasSubstr("Connection: close\r\n"));
    EXPECT_THAT(r.data, HasSubstr("POST /echo? v1.0 [hi]"));
  }
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n"));
  const ReadResult first = ReadUntil(fd, Responses(1));
  EXPECT_THAT(first.data, HasSubstr("Connection: keep-alive\r\n"));
  EXPECT_FALSE(first.eof);
  ASSERT_TRUE(SendAll(fd, "GET /echo HTTP/1.0\r\nHost: b\r\n\r\n"));
  const ReadResult second = ReadUntil(fd, [](const std::string&) { return false; });
  EXPECT_THAT(second.data, HasSubstr("host=b"));
  EXPECT_TRUE(second.eof);
}

TEST_F(HttpConformanceTest, ConnectionCloseFromAnHttp11ClientIsHonoured) {
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const ReadResult r = ReadUntil(fd, [](const std::string&) { return false; });
  EXPECT_THAT(r.data, HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(r.eof);
}

TEST_F(HttpConformanceTest, RefusesWhatItCannotServeAndCloses) {
  struct Case {
    std::string request;
    std::string status_line;
  };
  const std::vector<Case> cases = {
      {"GET /echo HTTP/2.0\r\nHost: h\r\n\r\n", "HTTP/1.1 505 "},
      {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nxx", "HTTP/1.1 400 "},
      // A chunked body past max_body_bytes (1024).
      {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
           std::string(2048, 'x') + "\r\n0\r\n\r\n",
       "HTTP/1.1 413 "},
      {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n", "HTTP/1.1 413 "},
      {"NOT A REQUEST\r\n\r\n", "HTTP/1.1 400 "},
  };
  for (const Case& c : cases) {
    UniqueFd fd = Connect(server_->port());
    ASSERT_TRUE(SendAll(fd, c.request));
    const ReadResult r = ReadUntil(fd, [](const std::string&) { return false; });
    EXPECT_THAT(r.data, StartsWith(c.status_line)) << c.request.substr(0, 60);
    EXPECT_THAT(r.data, HasSubstr("Connection: close\r\n")) << c.request.substr(0, 60);
    EXPECT_TRUE(r.eof) << c.request.substr(0, 60);
  }
}

TEST_F(HttpConformanceTest, UnknownPathsAndMethodsGet404And405AndTheConnectionLives) {
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd, Responses(1)).data, StartsWith("HTTP/1.1 404 Not Found\r\n"));
  ASSERT_TRUE(SendAll(fd, "DELETE /echo HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd, Responses(1)).data,
              StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  ASSERT_TRUE(SendAll(fd, "GET /echo HTTP/1.1\r\nHost: alive\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd, Responses(1)).data, HasSubstr("host=alive"));
}

}  // namespace
}  // namespace tessera
