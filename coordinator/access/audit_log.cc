#include "coordinator/access/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

const Logger kLog("audit");

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(std::string path, bool prompts) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(path), prompts));
  if (absl::Status s = log->Reopen(); !s.ok()) return s;
  return log;
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) close(fd_);
}

absl::Status AuditLog::Reopen() {
  const int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--audit-log=%s: cannot open it: %s", path_, strerror(errno)));
  }
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  return absl::OkStatus();
}

void AuditLog::Write(const AuditRecord& r) {
  nlohmann::json line = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone())},
      {"key_id", r.caller.key_id},
      {"client", r.caller.client},
      {"api", r.caller.api},
      {"request_id", r.request_id},
      {"model", r.model},
      {"prompt_tokens", r.prompt_tokens},
      {"completion_tokens", r.completion_tokens},
      {"finish_reason", r.finish_reason},
      {"status", absl::StatusCodeToString(r.status.code())},
      {"latency_ms", absl::ToDoubleMilliseconds(r.latency)},
  };
  if (!r.status.ok()) line["message"] = std::string(r.status.message());
  if (prompts_) line["prompt"] = r.prompt;
  // Invalid UTF-8 in a prompt or message is replaced, never thrown on.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  absl::MutexLock lock(&mu_);
  if (fd_ < 0) return;
  // A full disk loses audit lines, never requests; say so.
  const ssize_t written = ::write(fd_, text.data(), text.size());
  if (written != static_cast<ssize_t>(text.size())) {
    kLog.Error("--audit-log=%s: could not write a line: %s", path_,
               written < 0 ? strerror(errno) : "short write");
  }
}

}  // namespace tessera
