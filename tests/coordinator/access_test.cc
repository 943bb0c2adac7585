// Access control's parts, each against an independent reference: the
// hashes against the published test vectors, the keys file parser and
// store, the quotas on a fake clock, and the audit log's JSON lines read
// back by a JSON parser.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/crypto.h"
#include "coordinator/access/api_keys.h"
#include "coordinator/access/audit_log.h"
#include "coordinator/access/rate_limiter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tessera::testing::IsOk;
using ::tessera::testing::StatusIs;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/access_test_" + name;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(CryptoTest, MatchesThePublishedTestVectors) {
  // FIPS 180-2, appendix B.1; RFC 4231, test case 2.
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(SecretsEqual("same", "same"));
  EXPECT_FALSE(SecretsEqual("same", "sane"));
  EXPECT_FALSE(SecretsEqual("same", "same!"));
  EXPECT_EQ(RandomHex(16).size(), 32u);
  EXPECT_NE(RandomHex(16), RandomHex(16));
}

const std::string kAliceKey = "tsk-alice";
const std::string kBobKey = "tsk-bob";

std::string KeysFile(bool with_bob) {
  std::string text = "# comment\n\nalice sha256:" + Sha256Hex(kAliceKey) + " admin rpm=5 tpm=100\n";
  if (with_bob) text += "bob\tsha256:" + Sha256Hex(kBobKey) + " streams=2\n";
  return text;
}

TEST(ApiKeysTest, ParsesKeysAndLimits) {
  absl::StatusOr<std::vector<ApiKey>> keys = ParseApiKeys(KeysFile(true), "keys");
  ASSERT_THAT(keys.status(), IsOk());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, "alice");
  EXPECT_TRUE((*keys)[0].admin);
  EXPECT_EQ((*keys)[0].limits.requests_per_minute, 5);
  EXPECT_EQ((*keys)[0].limits.tokens_per_minute, 100);
  EXPECT_EQ((*keys)[1].id, "bob");
  EXPECT_FALSE((*keys)[1].admin);
  EXPECT_EQ((*keys)[1].limits.concurrent_streams, 2);
}

TEST(ApiKeysTest, RefusesBadLinesNamingFileAndLine) {
  const std::string hash = "sha256:" + Sha256Hex("x");
  struct Case {
    std::string text;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"carol tsk-plaintext-key\n", "keys:1: key carol: the second field must be sha256:"},
      {"carol\n", "keys:1: expected: ID sha256:HEX"},
      {"\ncarol " + hash + " rpm=-1\n", "keys:2: key carol: 'rpm=-1'"},
      {"carol " + hash + " qps=3\n", "unknown limit 'qps'"},
      {"carol " + hash + "\ncarol sha256:" + Sha256Hex("y") + "\n", "keys:2: key id carol appears twice"},
      {"carol " + hash + "\ndave " + hash + "\n", "keys:2: key dave has the same hash"},
      {"carol sha256:" + std::string(64, 'G') + "\n", "64 lower-case hex digits"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseApiKeys(c.text, "keys").status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.text;
  }
}

TEST(ApiKeysTest, AuthenticatesRevokesOnReloadAndKeepsKeysOnABadFile) {
  const std::string path = TempPath("keys");
  WriteFile(path, KeysFile(true));
  absl::StatusOr<std::unique_ptr<ApiKeyStore>> store = ApiKeyStore::Open(path);
  ASSERT_THAT(store.status(), IsOk());
  EXPECT_EQ((*store)->size(), 2u);
  absl::StatusOr<ApiKey> bob = (*store)->Authenticate("Bearer " + kBobKey);
  ASSERT_THAT(bob.status(), IsOk());
  EXPECT_EQ(bob->id, "bob");
  EXPECT_THAT((*store)->Authenticate("bearer  " + kAliceKey).status(), IsOk());
  EXPECT_THAT((*store)->Authenticate("").status(),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing API key")));
  EXPECT_THAT((*store)->Authenticate(kBobKey).status(),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("Bearer <key>")));
  const absl::Status wrong = (*store)->Authenticate("Bearer tsk-guessed").status();
  EXPECT_THAT(wrong, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("invalid API key")));
  EXPECT_THAT(std::string(wrong.message()), Not(HasSubstr("tsk-guessed")));

  WriteFile(path, KeysFile(false));  // bob revoked
  ASSERT_THAT((*store)->Reload(), IsOk());
  EXPECT_THAT((*store)->Authenticate("Bearer " + kBobKey).status(),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("revoked")));
  WriteFile(path, "broken line\n");
  EXPECT_THAT((*store)->Reload(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(":1:")));
  EXPECT_THAT((*store)->Authenticate("Bearer " + kAliceKey).status(), IsOk());
  std::remove(path.c_str());
}

class FakeClock {
 public:
  absl::Time now = absl::FromUnixSeconds(1000000);
  std::function<absl::Time()> fn() {
    return [this] { return now; };
  }
};

Caller KeyWith(const std::string& id, RateLimits limits) {
  Caller c;
  c.key_id = id;
  c.limits = limits;
  return c;
}

TEST(RateLimiterTest, RequestsPerMinuteRefillAndSayWhenToRetry) {
  FakeClock clock;
  RateLimiter limiter(clock.fn());
  const Caller alice = KeyWith("alice", {2, 0, 0});
  EXPECT_THAT(limiter.Acquire(alice, 10).status(), IsOk());
  EXPECT_THAT(limiter.Acquire(alice, 10).status(), IsOk());
  const absl::Status third = limiter.Acquire(alice, 10).status();
  EXPECT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted,
                              HasSubstr("key alice is over its 2 requests per minute")));
  EXPECT_EQ(RetryAfterSeconds(third), 30);  // one request refills in 60 / 2 s
  // Another key is not affected.
  EXPECT_THAT(limiter.Acquire(KeyWith("bob", {2, 0, 0}), 10).status(), IsOk());
  clock.now += absl::Seconds(29);
  EXPECT_EQ(RetryAfterSeconds(limiter.Acquire(alice, 10).status()), 1);
  clock.now += absl::Seconds(1);
  EXPECT_THAT(limiter.Acquire(alice, 10).status(), IsOk());
}

TEST(RateLimiterTest, ConcurrentStreamsAreHeldUntilTheLeaseEnds) {
  FakeClock clock;
  RateLimiter limiter(clock.fn());
  const Caller bob = KeyWith("bob", {0, 0, 1});
  absl::StatusOr<std::unique_ptr<RateLimiter::Lease>> first = limiter.Acquire(bob, 5);
  ASSERT_THAT(first.status(), IsOk());
  ASSERT_NE(*first, nullptr);
  EXPECT_THAT(limiter.Acquire(bob, 5).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("1 streams open")));
  first->reset();
  EXPECT_THAT(limiter.Acquire(bob, 5).status(), IsOk());
}

TEST(RateLimiterTest, TokensPerMinuteChargePromptThenCompletion) {
  FakeClock clock;
  RateLimiter limiter(clock.fn());
  const Caller carol = KeyWith("carol", {0, 100, 0});
  {
    absl::StatusOr<std::unique_ptr<RateLimiter::Lease>> lease = limiter.Acquire(carol, 60);
    ASSERT_THAT(lease.status(), IsOk());
    (*lease)->ChargeTokens(50);  // 100 - 60 - 50 = -10 left
  }
  const absl::Status over = limiter.Acquire(carol, 60).status();
  EXPECT_THAT(over, StatusIs(absl::StatusCode::kResourceExhausted,
                             HasSubstr("over its 100 tokens per minute")));
  EXPECT_EQ(RetryAfterSeconds(over), 42);  // (60 - -10) tokens at 100 per 60 s
  EXPECT_THAT(limiter.Acquire(carol, 101).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("whole quota")));
  clock.now += absl::Seconds(42);
  EXPECT_THAT(limiter.Acquire(carol, 60).status(), IsOk());
  // A key without limits is not tracked at all.
  absl::StatusOr<std::unique_ptr<RateLimiter::Lease>> free = limiter.Acquire(KeyWith("d", {}), 1);
  ASSERT_THAT(free.status(), IsOk());
  EXPECT_EQ(*free, nullptr);
}

TEST(AuditLogTest, WritesOneJsonLinePerRecordAndReopensAfterRotation) {
  const std::string path = TempPath("audit.jsonl");
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path, /*prompts=*/false);
  ASSERT_THAT(log.status(), IsOk());
  AuditRecord r;
  r.time = absl::FromUnixMillis(1764900000123);
  r.caller.key_id = "alice";
  r.caller.client = "ipv4:10.0.0.7:41234";
  r.caller.api = "http";
  r.request_id = "cmpl-1";
  r.model = "m";
  r.prompt_tokens = 7;
  r.completion_tokens = 3;
  r.finish_reason = "length";
  r.latency = absl::Milliseconds(12.5);
  r.prompt = "secret prompt \xff";
  (*log)->Write(r);
  r.status = absl::ResourceExhaustedError("key alice is over its quota");
  r.finish_reason = "";
  (*log)->Write(r);
  std::vector<nlohmann::json> lines = ReadJsonLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["time"], "2025-12-05T02:00:00.123Z");
  EXPECT_EQ(lines[0]["key_id"], "alice");
  EXPECT_EQ(lines[0]["client"], "ipv4:10.0.0.7:41234");
  EXPECT_EQ(lines[0]["api"], "http");
  EXPECT_EQ(lines[0]["request_id"], "cmpl-1");
  EXPECT_EQ(lines[0]["prompt_tokens"], 7);
  EXPECT_EQ(lines[0]["completion_tokens"], 3);
  EXPECT_EQ(lines[0]["finish_reason"], "length");
  EXPECT_EQ(lines[0]["status"], "OK");
  EXPECT_DOUBLE_EQ(lines[0]["latency_ms"].get<double>(), 12.5);
  EXPECT_FALSE(lines[0].contains("prompt"));
  EXPECT_EQ(lines[1]["status"], "RESOURCE_EXHAUSTED");
  EXPECT_EQ(lines[1]["message"], "key alice is over its quota");

  // logrotate moves the file away, then SIGHUP reopens the path.
  const std::string rotated = path + ".1";
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
  ASSERT_THAT((*log)->Reopen(), IsOk());
  (*log)->Write(r);
  EXPECT_EQ(ReadJsonLines(path).size(), 1u);
  EXPECT_EQ(ReadJsonLines(rotated).size(), 2u);

  absl::StatusOr<std::unique_ptr<AuditLog>> with_prompts = AuditLog::Open(path, true);
  ASSERT_THAT(with_prompts.status(), IsOk());
  (*with_prompts)->Write(r);
  lines = ReadJsonLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["prompt"], "secret prompt \xef\xbf\xbd");  // invalid UTF-8 replaced
  std::remove(path.c_str());
  std::remove(rotated.c_str());
  EXPECT_THAT(AuditLog::Open("/nonexistent/dir/audit", false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--audit-log=/nonexistent")));
}

}  // namespace
}  // namespace tessera
