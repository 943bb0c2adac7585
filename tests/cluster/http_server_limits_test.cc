// HttpServer's defences against slow, idle and malformed clients, with
// trivial handlers and raw loopback sockets: ambiguous body lengths, idle
// and header timeouts, the connection cap, the
// per-connection write-buffer cap with its stall timeout, a slow reader that
// must get every byte, and accept() running out of file descriptors.
//
// Timeouts are configured short (hundreds of milliseconds) and every wait
// has a generous upper bound, so a loaded machine makes the tests slower,
// not flaky. References are hand-written: status lines fixed by HTTP, a byte
// pattern computed independently of the server, and the server's counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "testing/raw_socket.h"
#include "testing/status_matchers.h"
#include "common/http/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using ::tessera::testing::Connect;
using ::tessera::testing::ConnectTo;
using ::tessera::testing::IsOk;
using ::tessera::testing::NewSocket;
using ::tessera::testing::ReadResult;
using ::tessera::testing::ReadToEof;
using ::tessera::testing::ReadUntil;
using ::tessera::testing::SendAll;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

constexpr auto kGenerous = ::tessera::testing::kGenerousWait;

// Polls `done` every few milliseconds until it holds or `limit` passes.
bool WaitFor(const std::function<bool()>& done, Clock::duration limit = kGenerous) {
  const Clock::time_point end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

std::string Get(const std::string& path) {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: test\r\n\r\n");
}

// True once `data` holds one whole Content-Length response.
bool HasWholeResponse(const std::string& data) {
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  const size_t at = data.find("Content-Length: ");
  if (at == std::string::npos || at > end) return false;
  size_t length = 0;
  const size_t eol = data.find("\r\n", at);
  if (!absl::SimpleAtoi(data.substr(at + 16, eol - at - 16), &length)) return false;
  return data.size() >= end + 4 + length;
}

ReadResult ReadResponse(const UniqueFd& fd) { return ReadUntil(fd, HasWholeResponse); }

// What the test's pending responses share with the test body.
struct StreamProbe {
  std::atomic<bool> aborted{false};
  std::atomic<int> polls{0};
  std::atomic<bool> release{false};
  absl::Mutex mu;
  Waker waker ABSL_GUARDED_BY(mu);  // set by the handler, on the loop thread
  void Wake() {
    Waker w;
    {
      absl::MutexLock lock(&mu);
      w = waker;
    }
    w();
  }
};

// Never ends: each Poll adds one 16 KiB chunk and asks to be polled again,
// so only the server's backpressure limits what it buffers.
class EndlessStream final : public PendingResponse {
 public:
  static constexpr size_t kChunk = 16 * 1024;
  EndlessStream(std::shared_ptr<StreamProbe> probe, Waker waker)
      : probe_(std::move(probe)), waker_(std::move(waker)) {}
  bool Poll(std::string* out) override {
    ++probe_->polls;
    if (!head_sent_) *out += FormatChunkedHead(200, "text/event-stream", true);
    head_sent_ = true;
    *out += FormatChunk(std::string(kChunk, 'x'));
    waker_();
    return false;
  }
  void Abort() override { probe_->aborted = true; }

 private:
  std::shared_ptr<StreamProbe> probe_;
  Waker waker_;
  bool head_sent_ = false;
};

// The byte at `i` of the patterned body; a period prime to the chunk size
// makes a lost, repeated or reordered chunk show.
char PatternByte(size_t i) { return static_cast<char>('a' + (i * 7 + i / 4093) % 26); }

// A `total`-byte body produced 16 KiB per Poll, as fast as it is polled.
class PatternStream final : public PendingResponse {
 public:
  PatternStream(size_t total, Waker waker) : total_(total), waker_(std::move(waker)) {}
  bool Poll(std::string* out) override {
    if (sent_ == 0) {
      *out += absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", total_,
                           "\r\nConnection: close\r\n\r\n");
    }
    const size_t end = std::min(total_, sent_ + 16 * 1024);
    for (; sent_ < end; ++sent_) out->push_back(PatternByte(sent_));
    if (sent_ == total_) return true;
    waker_();
    return false;
  }
  void Abort() override {}

 private:
  const size_t total_;
  size_t sent_ = 0;
  Waker waker_;
};

// Sends its head at once and its body only when the test releases it.
class HeldResponse final : public PendingResponse {
 public:
  explicit HeldResponse(std::shared_ptr<StreamProbe> probe) : probe_(std::move(probe)) {}
  bool Poll(std::string* out) override {
    if (!head_sent_) *out += FormatChunkedHead(200, "text/plain", true);
    head_sent_ = true;
    if (!probe_->release) return false;
    *out += FormatChunk("released") + LastChunk();
    return true;
  }
  void Abort() override { probe_->aborted = true; }

 private:
  std::shared_ptr<StreamProbe> probe_;
  bool head_sent_ = false;
};

class HttpServerLimitsTest : public ::testing::Test {
 protected:
  // Short timeouts unless a test says otherwise.
  HttpServerLimitsTest() {
    options_.idle_timeout = absl::Seconds(60);
    options_.header_timeout = absl::Seconds(60);
    options_.write_stall_timeout = absl::Seconds(60);
    options_.error_response = [](int status, const std::string& message) {
      HttpResponse r;
      r.status = status;
      r.body = nlohmann::json{{"error", {{"message", message}, {"code", status}}}}.dump();
      return r;
    };
  }

  void StartServer() {
    server_ = std::make_unique<HttpServer>(options_);
    server_->Route("GET", "/hello", [](const HttpRequest&, const Waker&) {
      HandlerResult result;
      result.response.content_type = "text/plain";
      result.response.body = "hello";
      return result;
    });
    server_->Route("GET", "/endless", [this](const HttpRequest&, const Waker& waker) {
      HandlerResult result;
      result.pending = std::make_unique<EndlessStream>(probe_, waker);
      return result;
    });
    server_->Route("GET", "/pattern", [this](const HttpRequest&, const Waker& waker) {
      HandlerResult result;
      result.pending = std::make_unique<PatternStream>(pattern_bytes_, waker);
      return result;
    });
    server_->Route("GET", "/held", [this](const HttpRequest&, const Waker& waker) {
      {
        absl::MutexLock lock(&probe_->mu);
        probe_->waker = waker;
      }
      HandlerResult result;
      result.pending = std::make_unique<HeldResponse>(probe_);
      return result;
    });
    ASSERT_THAT(server_->Start("127.0.0.1:0"), IsOk());
  }

  HttpServerOptions options_;
  std::unique_ptr<HttpServer> server_;
  std::shared_ptr<StreamProbe> probe_ = std::make_shared<StreamProbe>();
  size_t pattern_bytes_ = 0;
};

TEST_F(HttpServerLimitsTest, ClosesIdleKeepAliveConnectionWithoutAReply) {
  options_.idle_timeout = absl::Milliseconds(200);
  StartServer();
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(fd.valid());
  // Kept alive between requests that follow one another at once.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(SendAll(fd, Get("/hello")));
    const ReadResult reply = ReadResponse(fd);
    EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_FALSE(reply.eof);
  }
  const ReadResult rest = ReadToEof(fd);
  EXPECT_TRUE(rest.eof);
  EXPECT_EQ(rest.data, "");  // an idle connection is closed, not answered 408
  EXPECT_TRUE(WaitFor([&] { return server_->stats().connections == 0; }));
  EXPECT_EQ(server_->stats().closed_idle, 1);
  EXPECT_EQ(server_->stats().request_timeouts, 0);
}

TEST_F(HttpServerLimitsTest, UnfinishedHeadersGet408) {
  options_.header_timeout = absl::Milliseconds(200);
  StartServer();
  // Headers that never end, on a new connection.
  UniqueFd partial = Connect(server_->port());
  ASSERT_TRUE(SendAll(partial, "GET /hello HTTP/1.1\r\nHost: test\r\n"));
  // Nothing at all.
  UniqueFd silent = Connect(server_->port());
  // A kept-alive connection whose second request stops half-way: its clock
  // starts at that request, though the idle timeout is a minute.
  UniqueFd second = Connect(server_->port());
  ASSERT_TRUE(SendAll(second, Get("/hello")));
  EXPECT_THAT(ReadResponse(second).data, StartsWith("HTTP/1.1 200 OK\r\n"));
  ASSERT_TRUE(SendAll(second, "GET /hello HTTP/1.1\r\nHos"));

  for (const UniqueFd* fd : {&partial, &silent, &second}) {
    const ReadResult reply = ReadToEof(*fd);
    EXPECT_TRUE(reply.eof);
    EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
    EXPECT_THAT(reply.data, HasSubstr("Connection: close\r\n"));
    EXPECT_THAT(reply.data, HasSubstr("\"code\":408"));
  }
  EXPECT_EQ(server_->stats().request_timeouts, 3);
  EXPECT_EQ(server_->stats().closed_idle, 0);
}

TEST_F(HttpServerLimitsTest, StalledBodyGets408AfterIdleTimeout) {
  options_.idle_timeout = absl::Milliseconds(200);
  StartServer();
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /hello HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  const ReadResult reply = ReadToEof(fd);
  EXPECT_TRUE(reply.eof);
  EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  EXPECT_EQ(server_->stats().request_timeouts, 1);
}

// RFC 9112 section 6.3: differing Content-Length values, or one beside
// Transfer-Encoding, leave the body's end unknown: 400 and close at once
// (the idle timeout is a minute here, so a server that waits for the larger
// length fails the 20-second read). Repeats of one value are the same
// length.
TEST_F(HttpServerLimitsTest, AmbiguousBodyLengthGets400AndClose) {
  StartServer();
  const std::vector<std::string> ambiguous = {
      "GET /hello HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nContent-Length: 3, 10\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nContent-Length: -1\r\n\r\nabc",
      "GET /hello HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc",
  };
  for (const std::string& request : ambiguous) {
    UniqueFd fd = Connect(server_->port());
    ASSERT_TRUE(SendAll(fd, request));
    const ReadResult reply = ReadToEof(fd);
    EXPECT_TRUE(reply.eof) << request;
    EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 400 Bad Request\r\n")) << request;
    EXPECT_THAT(reply.data, HasSubstr("Connection: close\r\n")) << request;
  }
  UniqueFd same = Connect(server_->port());
  ASSERT_TRUE(SendAll(same, "GET /hello HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3, 3"
                            "\r\n\r\nabc" + Get("/hello")));
  ReadResult two = ReadUntil(same, [](const std::string& d) {
    return HasWholeResponse(d) && HasWholeResponse(d.substr(d.find("hello") + 5));
  });
  EXPECT_THAT(two.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(two.eof);
}

TEST_F(HttpServerLimitsTest, PendingResponseOutlivesEveryClientTimeout) {
  // Waiting for the producer (the scheduler) is not the client's fault.
  options_.idle_timeout = absl::Milliseconds(100);
  options_.header_timeout = absl::Milliseconds(100);
  options_.write_stall_timeout = absl::Milliseconds(100);
  StartServer();
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, Get("/held")));
  const ReadResult head =
      ReadUntil(fd, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
  EXPECT_THAT(head.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  probe_->release = true;
  probe_->Wake();
  const ReadResult body = ReadUntil(
      fd, [](const std::string& d) { return d.find("0\r\n\r\n") != std::string::npos; });
  EXPECT_FALSE(body.eof);
  EXPECT_EQ(body.data, "8\r\nreleased\r\n0\r\n\r\n");
  EXPECT_FALSE(probe_->aborted);
  const HttpServerStats s = server_->stats();
  EXPECT_EQ(s.closed_idle + s.request_timeouts + s.closed_for_stall, 0);
}

TEST_F(HttpServerLimitsTest, ConnectionPastTheCapGets503AndAFreedSlotIsReused) {
  options_.max_connections = 2;
  StartServer();
  UniqueFd a = Connect(server_->port());
  UniqueFd b = Connect(server_->port());
  for (const UniqueFd* fd : {&a, &b}) {
    ASSERT_TRUE(SendAll(*fd, Get("/hello")));
    EXPECT_THAT(ReadResponse(*fd).data, StartsWith("HTTP/1.1 200 OK\r\n"));
  }
  UniqueFd refused = Connect(server_->port());
  ASSERT_TRUE(refused.valid());
  const ReadResult reply = ReadToEof(refused);
  EXPECT_TRUE(reply.eof);
  ASSERT_THAT(reply.data, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  const nlohmann::json body =
      nlohmann::json::parse(reply.data.substr(reply.data.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["error"]["code"], 503);
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("2 connections"));
  EXPECT_EQ(server_->stats().rejected_over_limit, 1);

  refused.Reset();
  a.Reset();
  ASSERT_TRUE(WaitFor([&] { return server_->stats().connections == 1; }));
  UniqueFd c = Connect(server_->port());
  ASSERT_TRUE(SendAll(c, Get("/hello")));
  const ReadResult again = ReadResponse(c);
  EXPECT_THAT(again.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(again.data, HasSubstr("\r\n\r\nhello"));
  EXPECT_EQ(server_->stats().rejected_over_limit, 1);
}

TEST_F(HttpServerLimitsTest, ClientThatNeverReadsIsCappedThenDroppedAndAborted) {
  constexpr int64_t kCap = 256 * 1024;
  options_.max_write_buffer_bytes = kCap;
  options_.write_stall_timeout = absl::Seconds(1);
  StartServer();
  UniqueFd fd = Connect(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(SendAll(fd, Get("/endless")));
  // Once the kernel's buffers are full, the server's own fills to the cap.
  ASSERT_TRUE(WaitFor([&] { return server_->stats().buffered_bytes >= kCap; }))
      << "buffered " << server_->stats().buffered_bytes;
  const int polls = probe_->polls;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The producer is no longer polled, so its output waits where it is made.
  EXPECT_EQ(probe_->polls, polls);
  EXPECT_GE(server_->stats().polls_deferred, 1);
  ASSERT_TRUE(WaitFor([&] { return probe_->aborted.load(); }));
  const HttpServerStats s = server_->stats();
  // One Poll may overshoot the cap by one framed chunk (hex size + CRLFs).
  EXPECT_LE(s.peak_buffered_bytes, kCap + static_cast<int64_t>(EndlessStream::kChunk) + 16);
  EXPECT_EQ(s.closed_for_stall, 1);
  EXPECT_EQ(s.connections, 0);
  EXPECT_EQ(s.buffered_bytes, 0);
}

TEST_F(HttpServerLimitsTest, SlowReaderGetsEveryByteInOrder) {
  options_.max_write_buffer_bytes = 64 * 1024;
  options_.write_stall_timeout = absl::Seconds(5);
  pattern_bytes_ = 8 << 20;  // beyond what the kernel's socket buffers hold
  StartServer();
  UniqueFd fd = Connect(server_->port(), /*receive_buffer=*/8192);
  ASSERT_TRUE(SendAll(fd, Get("/pattern")));
  // Small reads with pauses: far slower than the producer, never stalled.
  std::string data;
  size_t body = std::string::npos;
  char buf[16384];
  while (body == std::string::npos || data.size() < body + pattern_bytes_) {
    pollfd p{fd.get(), POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 20000), 0) << "stalled after " << data.size() << " bytes";
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    ASSERT_GT(n, 0) << "closed after " << data.size() << " bytes";
    data.append(buf, n);
    if (body == std::string::npos && data.find("\r\n\r\n") != std::string::npos) {
      body = data.find("\r\n\r\n") + 4;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_THAT(data, StartsWith("HTTP/1.1 200 OK\r\n"));
  ASSERT_EQ(data.size() - body, pattern_bytes_);
  size_t first_wrong = pattern_bytes_;
  for (size_t i = 0; i < pattern_bytes_; ++i) {
    if (data[body + i] != PatternByte(i)) {
      first_wrong = i;
      break;
    }
  }
  EXPECT_EQ(first_wrong, pattern_bytes_);
  const HttpServerStats s = server_->stats();
  EXPECT_GE(s.polls_deferred, 1);  // backpressure did engage
  EXPECT_EQ(s.closed_for_stall, 0);
  EXPECT_LE(s.peak_buffered_bytes, 64 * 1024 + 16 * 1024);
}

// Lowers the soft descriptor limit and fills every free slot below it;
// undoes both when destroyed.
class DescriptorExhaustion {
 public:
  DescriptorExhaustion() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    // The limit caps descriptor numbers: a little above the highest open one.
    int highest = 2;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      int fd = 0;
      if (absl::SimpleAtoi(entry.path().filename().string(), &fd)) highest = std::max(highest, fd);
    }
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, highest + 32);
    ok_ = setrlimit(RLIMIT_NOFILE, &low) == 0;
    for (;;) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
  }
  ~DescriptorExhaustion() { Release(); }
  void Release() {
    for (int fd : fillers_) close(fd);
    fillers_.clear();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  bool ok() const { return ok_ && !fillers_.empty(); }

 private:
  rlimit saved_{};
  bool ok_ = false;
  std::vector<int> fillers_;
};

TEST_F(HttpServerLimitsTest, OutOfDescriptorsSheds503WithoutSpinningAndRecovers) {
  StartServer();
  // Client sockets made before the table fills; connect() needs no new one.
  UniqueFd shed = NewSocket();
  UniqueFd later = NewSocket();
  const int64_t calls_before = server_->stats().accept_calls;
  {
    DescriptorExhaustion exhaustion;
    ASSERT_TRUE(exhaustion.ok());
    ASSERT_TRUE(ConnectTo(shed, server_->port()));
    const ReadResult reply = ReadToEof(shed);
    EXPECT_TRUE(reply.eof);
    EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
    EXPECT_THAT(reply.data, HasSubstr("file descriptors"));
    // A busy loop would call accept() on every wake-up; give one the time
    // to show.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const HttpServerStats s = server_->stats();
    EXPECT_GE(s.accept_fd_exhausted, 1);
    EXPECT_EQ(s.shed_no_fds, 1);
    EXPECT_LE(s.accept_calls - calls_before, 6);
  }
  ASSERT_TRUE(ConnectTo(later, server_->port()));
  ASSERT_TRUE(SendAll(later, Get("/hello")));
  const ReadResult reply = ReadResponse(later);
  EXPECT_THAT(reply.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply.data, HasSubstr("\r\n\r\nhello"));
}

}  // namespace
}  // namespace tessera
