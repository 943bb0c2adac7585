// The one logger of the coordinator and the worker, on spdlog.
//
// Every line goes to stderr as
//   2026-12-04T23:40:01.123 I tessera-coordinator scheduler: request req-1-ab12: 7 prompt tokens
// (time, level D/I/W/E, program, component, message). A part of the system
// holds a `Logger` named after itself ("scheduler", "http", "membership",
// "stage", "control", ...); messages about one request go through
// `Logger::ForRequest(id)`, which prefixes "request <id>: ", so every line
// about a request carries its id in the same place.
//
// With the JSON format (--log-format json, for log shippers) every line is
// one JSON object instead:
//   {"time":"2026-12-04T23:40:01.123Z","level":"info","program":"tessera-coordinator",
//    "component":"scheduler","request_id":"req-1-ab12","message":"7 prompt tokens"}
// (time in UTC; request_id only on a request's lines; strings escaped as
// RFC 8259 asks, bytes that are not UTF-8 as U+FFFD).
//
// InitLogging is called once by each binary's main, before any other
// thread starts; until then (tests, tools) lines are written at info level
// with the program "tessera". Messages below the level are not formatted.
//
// Thread-safety: Logger is immutable and may be shared; lines from several
// threads are written whole (spdlog's stderr sink is mutex-protected).
#ifndef TESSERA_COMMON_LOG_H_
#define TESSERA_COMMON_LOG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace tessera {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// "debug", "info", "warning" or "error"; INVALID_ARGUMENT naming the value.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
// "text" or "json"; INVALID_ARGUMENT naming the value.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Names the program in every line, drops lines below `level` and writes
// them in `format`.
void InitLogging(const std::string& program, LogLevel level,
                 LogFormat format = LogFormat::kText);

// What a binary's main does with its --log-level and --log-format flags:
// parse them, then InitLogging. INVALID_ARGUMENT naming the value, and
// nothing changed.
absl::Status InitLogging(const std::string& program, absl::string_view level_name,
                         absl::string_view format_name = "text");

// `text` as the contents of a JSON string (without the quotes).
std::string JsonEscape(absl::string_view text);

// Logs `status` as an error of the component "main" and returns 1: how a
// binary's main reports that it cannot start or go on.
int ExitWithError(const absl::Status& status);

// Whether a line at `level` would be written.
bool LogEnabled(LogLevel level);

class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}

  // The same component, every message about request `request_id` (prefixed
  // "request <id>: " in text, a request_id field in JSON).
  Logger ForRequest(absl::string_view request_id) const {
    return Logger(component_, std::string(request_id));
  }

  template <typename... Args>
  void Debug(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    if (LogEnabled(LogLevel::kDebug)) Write(LogLevel::kDebug, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Info(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    if (LogEnabled(LogLevel::kInfo)) Write(LogLevel::kInfo, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Warning(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    if (LogEnabled(LogLevel::kWarning)) {
      Write(LogLevel::kWarning, absl::StrFormat(format, args...));
    }
  }
  template <typename... Args>
  void Error(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    if (LogEnabled(LogLevel::kError)) Write(LogLevel::kError, absl::StrFormat(format, args...));
  }

 private:
  Logger(std::string component, std::string request_id)
      : component_(std::move(component)), request_id_(std::move(request_id)) {}
  void Write(LogLevel level, const std::string& message) const;

  std::string component_;
  std::string request_id_;  // empty: not about one request
};

}  // namespace tessera

#endif  // TESSERA_COMMON_LOG_H_
