#include "common/byte_size.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace {

// Debian's abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  const double b = static_cast<double>(bytes);
  if (b >= kGiB) return absl::StrFormat("%.2f GiB", b / kGiB);
  if (b >= kMiB) return absl::StrFormat("%.2f MiB", b / kMiB);
  if (b >= kKiB) return absl::StrFormat("%.2f KiB", b / kKiB);
  return absl::StrCat(bytes, " B");
}


absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(Sv(text));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad byte size '", Sv(text), "': ", why));
  };
  size_t i = 0;
  unsigned __int128 whole = 0;
  int whole_digits = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
    if (++whole_digits > 20) return bad("too large");
    whole = whole * 10 + (t[i++] - '0');
  }
  unsigned __int128 frac = 0, frac_scale = 1;
  int frac_digits = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
      ++frac_digits;
      // Digits past the 18th change the result by far less than a byte.
      if (frac_digits <= 18) {
        frac = frac * 10 + (t[i] - '0');
        frac_scale *= 10;
      }
      ++i;
    }
  }
  if (whole_digits + frac_digits == 0) return bad("expected a number such as 24GiB");
  const std::string unit = absl::AsciiStrToLower(absl::StripLeadingAsciiWhitespace(t.substr(i)));
  // [k|m|g|t] powers of 1000, [ki|mi|gi|ti] powers of 1024, each with an
  // optional trailing "b"; "" and "b" are bytes.
  absl::string_view prefix = unit;
  absl::ConsumeSuffix(&prefix, "b");
  const bool binary = absl::ConsumeSuffix(&prefix, "i");
  const size_t power = prefix.size() == 1 ? absl::string_view("kmgt").find(prefix[0]) + 1 : 0;
  if (prefix.size() > 1 || (!prefix.empty() && power == 0) || (binary && power == 0)) {
    return bad(
        absl::StrCat("unknown unit '", unit, "' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"));
  }
  uint64_t multiplier = 1;
  for (size_t p = 0; p < power; ++p) multiplier *= binary ? 1024 : 1000;
  if (multiplier == 1 && frac != 0) return bad("a count of bytes must be whole");
  const unsigned __int128 bytes =
      whole * multiplier + (frac * multiplier + frac_scale / 2) / frac_scale;
  if (bytes > std::numeric_limits<uint64_t>::max()) return bad("too large");
  return static_cast<uint64_t>(bytes);
}

}  // namespace tessera
