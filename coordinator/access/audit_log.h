// The audit log (--audit-log FILE): one JSON object per line for every
// request that reached admission and every call refused for its key, with
// the time, the key's id (never the key), the client's address, the API,
// the request id, the model, prompt and completion tokens, the finish
// reason, the status and the latency. The prompt's text only when
// --audit-prompts asks for it. Reopen() (on SIGHUP) starts writing to the
// path anew, after logrotate has moved the old file away.
//
// Each line is written with one write(2) to a file opened with O_APPEND, so
// lines never interleave, even with another writer.
//
// Thread-safety: Write and Reopen may be called from any thread.
#ifndef TESSERA_COORDINATOR_ACCESS_AUDIT_LOG_H_
#define TESSERA_COORDINATOR_ACCESS_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/access/caller.h"

namespace tessera {

struct AuditRecord {
  absl::Time time;  // when the request arrived
  Caller caller;
  std::string request_id;  // "" when refused before admission gave it one
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string finish_reason;  // "stop", "length"; "" when it did not finish
  absl::Status status;
  absl::Duration latency;
  std::string prompt;  // written only with --audit-prompts
};

class AuditLog {
 public:
  // Opens `path` for appending (created 0600). INVALID_ARGUMENT naming it.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(std::string path, bool prompts);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  bool prompts() const { return prompts_; }
  void Write(const AuditRecord& record);
  // Closes the file and opens `path` again (a new file if it was moved).
  absl::Status Reopen();

 private:
  AuditLog(std::string path, bool prompts) : path_(std::move(path)), prompts_(prompts) {}

  const std::string path_;
  const bool prompts_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ACCESS_AUDIT_LOG_H_
