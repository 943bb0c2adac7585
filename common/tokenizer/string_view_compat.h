// Debian's abseil 20220623 defines its own absl::string_view class (not an
// alias of std::string_view), so the two do not convert implicitly. The
// tokenizer's API speaks std::string_view; this bridges to abseil's string
// utilities and heterogeneous hash-map lookup. Header-only, stateless.
#ifndef TESSERA_COMMON_TOKENIZER_STRING_VIEW_COMPAT_H_
#define TESSERA_COMMON_TOKENIZER_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace tessera

#endif  // TESSERA_COMMON_TOKENIZER_STRING_VIEW_COMPAT_H_
