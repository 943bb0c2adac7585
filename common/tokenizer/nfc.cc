#include "common/tokenizer/nfc.h"

#include <cstdint>

#include "common/tokenizer/unicode.h"

#ifdef TESSERA_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

namespace tessera {
namespace {

// Each invalid byte becomes U+FFFD, as in pre-tokenization (unicode.h).
std::string MakeValid(std::string_view text) {
  std::string valid;
  for (uint32_t cpt : DecodeUtf8Lenient(text)) AppendUtf8(cpt, &valid);
  return valid;
}

}  // namespace

#ifdef TESSERA_HAVE_ICU

bool NfcAvailable() { return true; }

std::string NfcNormalize(std::string_view text) {
  const std::string valid = MakeValid(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || nfc == nullptr) return valid;
  std::string out;
  icu::StringByteSink<std::string> sink(&out);
  nfc->normalizeUTF8(0, icu::StringPiece(valid.data(), static_cast<int32_t>(valid.size())), sink,
                     nullptr, status);
  return U_FAILURE(status) ? valid : out;
}

#else

bool NfcAvailable() { return false; }

std::string NfcNormalize(std::string_view text) { return MakeValid(text); }

#endif

}  // namespace tessera
