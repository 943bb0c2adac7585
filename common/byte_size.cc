#include "common/byte_size.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

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
  struct Unit {
    const char* name;
    uint64_t multiplier;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1000ull},
      {"kb", 1000ull},
      {"ki", 1ull << 10},
      {"kib", 1ull << 10},
      {"m", 1000000ull},
      {"mb", 1000000ull},
      {"mi", 1ull << 20},
      {"mib", 1ull << 20},
      {"g", 1000000000ull},
      {"gb", 1000000000ull},
      {"gi", 1ull << 30},
      {"gib", 1ull << 30},
      {"t", 1000000000000ull},
      {"tb", 1000000000000ull},
      {"ti", 1ull << 40},
      {"tib", 1ull << 40},
  };
  const Unit* u = nullptr;
  for (const Unit& candidate : kUnits) {
    if (unit == candidate.name) u = &candidate;
  }
  if (u == nullptr)
    return bad(
        absl::StrCat("unknown unit '", unit, "' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"));
  if (u->multiplier == 1 && frac != 0) return bad("a count of bytes must be whole");
  const unsigned __int128 bytes =
      whole * u->multiplier + (frac * u->multiplier + frac_scale / 2) / frac_scale;
  if (bytes > std::numeric_limits<uint64_t>::max()) return bad("too large");
  return static_cast<uint64_t>(bytes);
}

}  // namespace tessera
