#include "common/tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include "common/tokenizer/unicode_tables.h"

namespace tessera {
namespace {

using unicode_internal::kCodepointRanges;
using unicode_internal::kNumCodepointRanges;

uint16_t LookupFlagsSlow(uint32_t cpt) {
  const auto* begin = kCodepointRanges;
  const auto* end = kCodepointRanges + kNumCodepointRanges;
  // The last range whose start is <= cpt.
  const auto* it = std::upper_bound(
      begin, end, cpt,
      [](uint32_t c, const unicode_internal::CodepointRange& r) { return c < r.start; });
  return (it - 1)->flags;
}

// Most text is Latin; a direct table for the first 256 code points keeps the
// pre-tokenizer's inner loop free of binary searches there.
const std::array<uint16_t, 256>& Latin1Flags() {
  static const std::array<uint16_t, 256> table = [] {
    std::array<uint16_t, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) t[c] = LookupFlagsSlow(c);
    return t;
  }();
  return table;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

uint16_t CodepointFlagsOf(uint32_t cpt) {
  if (cpt < 256) return Latin1Flags()[cpt];
  if (cpt >= 0x110000) return kCpUndefined;
  return LookupFlagsSlow(cpt);
}

const char* UnicodeTablesVersion() { return unicode_internal::kUnicodeVersion; }

std::vector<uint32_t> DecodeUtf8Lenient(std::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  const size_t n = text.size();
  size_t off = 0;
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  while (off < n) {
    const unsigned char b0 = byte(off);
    if (b0 < 0x80) {
      cpts.push_back(b0);
      off += 1;
      continue;
    }
    // Length implied by the lead byte; 0 = not a lead byte. Like llama.cpp,
    // C0/C1 and E0/ED/F0/F4 leads are not checked for overlong forms or
    // surrogates: only the continuation bytes' top bits are.
    size_t len = 0;
    uint32_t cpt = 0;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cpt = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cpt = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cpt = b0 & 0x07;
    }
    bool ok = len != 0 && off + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if (!IsContinuation(byte(off + k))) {
        ok = false;
      } else {
        cpt = (cpt << 6) | (byte(off + k) & 0x3F);
      }
    }
    // F4 90.. and F5..F7 leads decode past U+10FFFF; llama.cpp throws on
    // re-encoding those (aborting the process), we treat the lead byte as
    // invalid like any other.
    if (ok && cpt < 0x110000) {
      cpts.push_back(cpt);
      off += len;
    } else {
      cpts.push_back(kReplacementCharacter);
      off += 1;
    }
  }
  return cpts;
}

void AppendUtf8(uint32_t cpt, std::string* out) {
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x110000) {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    AppendUtf8(kReplacementCharacter, out);
  }
}

namespace {

// Well-formed UTF-8 (Unicode Table 3-7): the sequence length implied by a
// lead byte and the range allowed for the byte after it. len == 0: the byte
// cannot start a sequence.
struct LeadInfo {
  int len;
  unsigned char lo, hi;  // range of the second byte
};

LeadInfo InfoForLead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes starting at bytes[i] continue a well-formed sequence led by
// bytes[i] (the lead counts as one); stops at the first byte out of range.
int ValidRun(std::string_view bytes, size_t i, const LeadInfo& info) {
  int k = 1;
  while (k < info.len && i + k < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i + k]);
    const unsigned char lo = k == 1 ? info.lo : 0x80;
    const unsigned char hi = k == 1 ? info.hi : 0xBF;
    if (c < lo || c > hi) break;
    ++k;
  }
  return k;
}

}  // namespace

void AppendValidUtf8(std::string_view bytes, std::string* out) {
  size_t i = 0;
  while (i < bytes.size()) {
    const LeadInfo info = InfoForLead(static_cast<unsigned char>(bytes[i]));
    if (info.len == 1) {
      out->push_back(bytes[i++]);
      continue;
    }
    if (info.len == 0) {
      AppendUtf8(kReplacementCharacter, out);
      ++i;
      continue;
    }
    const int k = ValidRun(bytes, i, info);
    if (k == info.len) {
      out->append(bytes.substr(i, k));
    } else {
      // A maximal ill-formed subpart becomes one U+FFFD.
      AppendUtf8(kReplacementCharacter, out);
    }
    i += k;
  }
}

size_t IncompleteUtf8Suffix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const unsigned char b = static_cast<unsigned char>(bytes[i]);
    if (IsContinuation(b)) continue;
    const LeadInfo info = InfoForLead(b);
    if (info.len <= 1 || static_cast<size_t>(info.len) <= back) return 0;
    return ValidRun(bytes, i, info) == static_cast<int>(back) ? back : 0;
  }
  return 0;
}

}  // namespace tessera
