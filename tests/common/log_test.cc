// The logger's line format, level filter and request prefix, and the JSON
// format (parsed back with nlohmann::json, an independent parser), read back
// from stderr (redirected to a file for the test).
#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace tessera {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Runs `body` with stderr going to a file; returns what was written.
template <typename Body>
std::string CaptureStderr(Body body) {
  const std::string path = ::testing::TempDir() + "/log_test_stderr.txt";
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  close(fd);
  body();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path.c_str());
  return text.str();
}

TEST(LogTest, LinesCarryTimeLevelProgramComponentAndRequest) {
  const std::string out = CaptureStderr([] {
    InitLogging("tessera-test", LogLevel::kInfo);
    const Logger log("scheduler");
    log.Debug("not written %d", 1);
    log.Info("plain %d", 2);
    log.ForRequest("req-7").Warning("failed: %s", "why");
  });
  std::vector<std::string> lines;
  std::stringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_THAT(lines[0], MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
                                     "I tessera-test scheduler: plain 2"));
  EXPECT_THAT(lines[1], HasSubstr(" W tessera-test scheduler: request req-7: failed: why"));
}

TEST(LogTest, LevelFilters) {
  const std::string out = CaptureStderr([] {
    InitLogging("tessera-test", LogLevel::kError);
    const Logger log("x");
    log.Info("no");
    log.Warning("no");
    log.Error("yes");
  });
  EXPECT_THAT(out, HasSubstr(" E tessera-test x: yes"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("no")));
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
}

TEST(LogTest, ParsesLevelsAndRefusesOthers) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("INFO"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_THAT(ParseLogLevel("loud").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log-level=loud")));
}

// One JSON object per line, with the request id as its own field, and
// every awkward byte escaped: quotes, backslashes, control characters,
// multi-byte UTF-8 kept, bytes that are not UTF-8 replaced.
TEST(LogTest, JsonLinesParseBackToTheirFields) {
  const std::string awkward = std::string("quote \" slash \\ tab\t nl\n bell\x07 é 😀 bad\xff\xc3(");
  const std::string out = CaptureStderr([&] {
    InitLogging("tessera-test", LogLevel::kInfo, LogFormat::kJson);
    const Logger log("scheduler");
    log.Debug("not written");
    log.Info("plain %d", 2);
    log.ForRequest("req-\"7\"").Warning("failed: %s", awkward);
  });
  InitLogging("tessera-test", LogLevel::kInfo);  // back to text for the other tests
  std::vector<std::string> lines;
  std::stringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u) << out;
  const nlohmann::json a = nlohmann::json::parse(lines[0]);
  EXPECT_THAT(a["time"].get<std::string>(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
  EXPECT_EQ(a["level"], "info");
  EXPECT_EQ(a["program"], "tessera-test");
  EXPECT_EQ(a["component"], "scheduler");
  EXPECT_EQ(a["message"], "plain 2");
  EXPECT_FALSE(a.contains("request_id"));
  const nlohmann::json b = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(b["level"], "warning");
  EXPECT_EQ(b["request_id"], "req-\"7\"");
  EXPECT_EQ(b["message"].get<std::string>(),
            "failed: quote \" slash \\ tab\t nl\n bell\x07 é 😀 bad\uFFFD\uFFFD(");
}

TEST(LogTest, ParsesFormatsAndRefusesOthers) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("JSON"), LogFormat::kJson);
  EXPECT_THAT(ParseLogFormat("xml").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log-format=xml")));
  EXPECT_THAT(InitLogging("x", "info", "yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log-format=yaml")));
}

}  // namespace
}  // namespace tessera
