#include "coordinator/access/api_keys.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"

namespace tessera {
namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(absl::string_view text, const std::string& path) {
  std::vector<ApiKey> keys;
  absl::flat_hash_set<std::string> ids, hashes;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", path, number, why));
    };
    std::vector<std::string> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.size() < 2) return bad("expected: ID sha256:HEX [admin] [rpm=N] [tpm=N] [streams=N]");
    ApiKey key;
    key.id = words[0];
    absl::string_view hash = words[1];
    if (!absl::ConsumePrefix(&hash, "sha256:") || hash.size() != 64 || !IsLowerHex(hash)) {
      return bad(absl::StrFormat(
          "key %s: the second field must be sha256: and 64 lower-case hex digits (the key's "
          "hash, never the key itself)",
          key.id));
    }
    key.sha256_hex = std::string(hash);
    for (size_t i = 2; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w == "admin") {
        key.admin = true;
        continue;
      }
      const size_t eq = w.find('=');
      int64_t value = -1;
      if (eq == std::string::npos || !absl::SimpleAtoi(w.substr(eq + 1), &value) || value < 0) {
        return bad(absl::StrFormat("key %s: '%s': expected admin, rpm=N, tpm=N or streams=N "
                                   "with N >= 0",
                                   key.id, w));
      }
      const std::string name = w.substr(0, eq);
      if (name == "rpm") {
        key.limits.requests_per_minute = value;
      } else if (name == "tpm") {
        key.limits.tokens_per_minute = value;
      } else if (name == "streams") {
        key.limits.concurrent_streams = value;
      } else {
        return bad(absl::StrFormat("key %s: unknown limit '%s' (rpm, tpm or streams)", key.id,
                                   name));
      }
    }
    if (!ids.insert(key.id).second) return bad(absl::StrFormat("key id %s appears twice", key.id));
    if (!hashes.insert(key.sha256_hex).second) {
      return bad(absl::StrFormat("key %s has the same hash as an earlier key", key.id));
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> ApiKeyStore::Open(std::string path) {
  std::unique_ptr<ApiKeyStore> store(new ApiKeyStore(std::move(path)));
  if (absl::Status s = store->Reload(); !s.ok()) return s;
  return store;
}

absl::Status ApiKeyStore::Reload() {
  std::ifstream in(path_);
  if (!in) return absl::InvalidArgumentError(absl::StrFormat("--api-keys=%s: cannot read it", path_));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<ApiKey>> keys = ParseApiKeys(text.str(), path_);
  if (!keys.ok()) return keys.status();
  absl::flat_hash_map<std::string, ApiKey> by_hash;
  for (ApiKey& k : *keys) {
    std::string hash = k.sha256_hex;
    by_hash.emplace(std::move(hash), std::move(k));
  }
  absl::MutexLock lock(&mu_);
  by_hash_ = std::move(by_hash);
  return absl::OkStatus();
}

absl::StatusOr<ApiKey> ApiKeyStore::Authenticate(absl::string_view authorization) const {
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send it as 'Authorization: Bearer <key>'");
  }
  if (!absl::StartsWithIgnoreCase(value, "bearer ")) {
    return absl::UnauthenticatedError(
        "the Authorization value must be 'Bearer <key>'");
  }
  value = absl::StripAsciiWhitespace(value.substr(7));
  // Looking up the key's hash reveals nothing about the key from timing.
  const std::string hash = Sha256Hex(std::string_view(value.data(), value.size()));
  absl::MutexLock lock(&mu_);
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    return absl::UnauthenticatedError("invalid API key (unknown or revoked)");
  }
  return it->second;
}

size_t ApiKeyStore::size() const {
  absl::MutexLock lock(&mu_);
  return by_hash_.size();
}

}  // namespace tessera
