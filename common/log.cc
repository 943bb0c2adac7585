#include "common/log.h"

#include <atomic>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace tessera {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

spdlog::level::level_enum SpdLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarning: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& program) {
  auto logger = std::make_shared<spdlog::logger>(
      program, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // %L: one-letter level (D, I, W, E). Whole lines, flushed at once, so a
  // test or a log shipper reading stderr sees every line as it happens.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n %v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::shared_ptr<spdlog::logger>& Instance() {
  static auto* logger = new std::shared_ptr<spdlog::logger>(MakeLogger("tessera"));
  return *logger;
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warning" || n == "warn") return LogLevel::kWarning;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-level=", name, ": must be debug, info, warning or error"));
}

void InitLogging(const std::string& program, LogLevel level) {
  Instance() = MakeLogger(program);
  g_level = static_cast<int>(level);
}

absl::Status InitLogging(const std::string& program, absl::string_view level_name) {
  absl::StatusOr<LogLevel> level = ParseLogLevel(level_name);
  if (!level.ok()) return level.status();
  InitLogging(program, *level);
  return absl::OkStatus();
}

int ExitWithError(const absl::Status& status) {
  Logger("main").Error("%s", status.ToString());
  return 1;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Logger::Write(LogLevel level, const std::string& message) const {
  Instance()->log(SpdLevel(level), "{}: {}{}", component_, prefix_, message);
}

}  // namespace tessera
