#include "common/log.h"

#include <atomic>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace tessera {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
// The program's name, for JSON lines (set before other threads start).
std::string& Program() {
  static auto* name = new std::string("tessera");
  return *name;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

// The length of the well-formed UTF-8 sequence at s[i], or 0.
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  uint32_t min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

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
  logger->set_pattern(g_json.load() ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %L %n %v");
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

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "text") return LogFormat::kText;
  if (n == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("--log-format=", name, ": must be text or json"));
}

void InitLogging(const std::string& program, LogLevel level, LogFormat format) {
  g_json = format == LogFormat::kJson;
  Program() = program;
  Instance() = MakeLogger(program);
  g_level = static_cast<int>(level);
}

absl::Status InitLogging(const std::string& program, absl::string_view level_name,
                         absl::string_view format_name) {
  absl::StatusOr<LogLevel> level = ParseLogLevel(level_name);
  if (!level.ok()) return level.status();
  absl::StatusOr<LogFormat> format = ParseLogFormat(format_name);
  if (!format.ok()) return format.status();
  InitLogging(program, *level, *format);
  return absl::OkStatus();
}

std::string JsonEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(text, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

int ExitWithError(const absl::Status& status) {
  Logger("main").Error("%s", status.ToString());
  return 1;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Logger::Write(LogLevel level, const std::string& message) const {
  if (!g_json.load()) {
    if (request_id_.empty()) {
      Instance()->log(SpdLevel(level), "{}: {}", component_, message);
    } else {
      Instance()->log(SpdLevel(level), "{}: request {}: {}", component_, request_id_, message);
    }
    return;
  }
  std::string line = absl::StrCat(
      "{\"time\":\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      "\",\"level\":\"", LevelName(level), "\",\"program\":\"", JsonEscape(Program()),
      "\",\"component\":\"", JsonEscape(component_), "\"");
  if (!request_id_.empty()) {
    absl::StrAppend(&line, ",\"request_id\":\"", JsonEscape(request_id_), "\"");
  }
  absl::StrAppend(&line, ",\"message\":\"", JsonEscape(message), "\"}");
  Instance()->log(SpdLevel(level), "{}", line);
}

}  // namespace tessera
