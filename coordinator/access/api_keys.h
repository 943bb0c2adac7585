// The client APIs' keys (--api-keys FILE), stored as SHA-256 hashes so the
// file never holds a usable key. One key per line:
//
//   ID sha256:HEX [admin] [rpm=N] [tpm=N] [streams=N]
//
// ID names the key in logs and the audit log; HEX is SHA-256 of the whole
// key string (scripts/security/new_api_key.sh makes a key and its line);
// `admin` allows the admin calls (the cluster layout and statistics in
// GetModelInfo); rpm / tpm / streams are the key's requests per minute,
// prompt + completion tokens per minute and concurrent streams (absent or 0:
// unlimited). Blank lines and lines starting with # are skipped.
//
// Reload() rereads the file (on SIGHUP): a revoked key fails from then on;
// a file that no longer parses keeps the keys in force and says why.
//
// Thread-safety: every method may be called from any thread.
#ifndef TESSERA_COORDINATOR_ACCESS_API_KEYS_H_
#define TESSERA_COORDINATOR_ACCESS_API_KEYS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/access/caller.h"

namespace tessera {

struct ApiKey {
  std::string id;
  std::string sha256_hex;
  bool admin = false;
  RateLimits limits;
};

// The keys in a keys file's text; INVALID_ARGUMENT naming `path`, the line
// and what is wrong with it. Ids and hashes must be unique.
absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(absl::string_view text, const std::string& path);

class ApiKeyStore {
 public:
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Open(std::string path);

  // Rereads the file; on an error the keys in force stay.
  absl::Status Reload();

  // The key an Authorization value ("Bearer KEY"; "" when absent) names.
  // UNAUTHENTICATED when it is missing, malformed or unknown; the message
  // never repeats the key.
  absl::StatusOr<ApiKey> Authenticate(absl::string_view authorization) const;

  size_t size() const;

 private:
  explicit ApiKeyStore(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ApiKey> by_hash_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_ACCESS_API_KEYS_H_
