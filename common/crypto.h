// The few cryptographic primitives Tessera's access control needs, on
// OpenSSL's libcrypto: SHA-256 (API keys are stored as their hash),
// HMAC-SHA-256 (stage credentials derived from the join secret), a
// comparison whose time does not depend on where two secrets differ, and
// random bytes for new secrets.
//
// Thread-safety: pure functions (OpenSSL 3's one-shot calls are thread-safe).
#ifndef TESSERA_COMMON_CRYPTO_H_
#define TESSERA_COMMON_CRYPTO_H_

#include <string>
#include <string_view>

namespace tessera {

// Lower-case hex of SHA-256(`data`): 64 characters.
std::string Sha256Hex(std::string_view data);

// Lower-case hex of HMAC-SHA-256 keyed by `key` over `message`.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// Whether `a` equals `b`, in time that depends on their lengths only.
bool SecretsEqual(std::string_view a, std::string_view b);

// `bytes` random bytes from OpenSSL's CSPRNG, as lower-case hex.
std::string RandomHex(int bytes);

}  // namespace tessera

#endif  // TESSERA_COMMON_CRYPTO_H_
