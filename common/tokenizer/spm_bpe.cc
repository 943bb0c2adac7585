#include "common/tokenizer/spm_bpe.h"

#include <cstdio>

namespace tessera {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581

// Byte length of the UTF-8 character starting at text[pos]; an invalid or
// truncated sequence counts as one byte (it then falls back to a byte token).
size_t CharLength(std::string_view text, size_t pos) {
  const uint8_t lead = static_cast<uint8_t>(text[pos]);
  size_t n = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3
                             : (lead >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || pos + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<uint8_t>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

}  // namespace

std::string SpmByteTokenText(uint8_t byte) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", byte);
  return buf;
}

std::string SpmPieceText(std::string_view token) {
  std::string out;
  for (size_t pos = 0; pos < token.size();) {
    if (token.substr(pos, kMetaspace.size()) == kMetaspace) {
      out += ' ';
      pos += kMetaspace.size();
    } else {
      out += token[pos++];
    }
  }
  return out;
}

std::string SpmNormalize(std::string_view text, bool prepend, bool unless_leading_space) {
  std::string out;
  if (text.empty()) return out;
  if (prepend && !(unless_leading_space && text[0] == ' ')) out += kMetaspace;
  for (char c : text) {
    if (c == ' ') {
      out += kMetaspace;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string_view> SpmSplitWords(std::string_view normalized) {
  std::vector<std::string_view> words;
  size_t start = 0;
  for (size_t pos = 1; pos < normalized.size(); ++pos) {
    if (normalized.substr(pos, kMetaspace.size()) == kMetaspace) {
      words.push_back(normalized.substr(start, pos - start));
      start = pos;
    }
  }
  if (start < normalized.size()) words.push_back(normalized.substr(start));
  return words;
}

void EncodeSpmBpeWord(std::string_view word,
                      const std::function<int32_t(std::string_view)>& lookup,
                      const std::array<int32_t, 256>& byte_ids, int32_t unk_id,
                      const BpeMergeTable& merges, std::vector<int32_t>* out) {
  std::vector<int32_t> symbols;
  bool previous_unknown = false;
  for (size_t pos = 0; pos < word.size();) {
    const size_t n = CharLength(word, pos);
    const std::string_view ch = word.substr(pos, n);
    pos += n;
    const int32_t id = lookup(ch);
    if (id >= 0) {
      symbols.push_back(id);
      previous_unknown = false;
      continue;
    }
    bool all_bytes = true;
    for (char c : ch) all_bytes = all_bytes && byte_ids[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : ch) symbols.push_back(byte_ids[static_cast<uint8_t>(c)]);
      previous_unknown = false;
    } else if (unk_id >= 0 && !previous_unknown) {
      symbols.push_back(unk_id);
      previous_unknown = true;
    }
  }
  for (const BpeSymbol& sym : ApplyBpeMerges(merges, symbols)) {
    if (sym.id >= 0) out->push_back(sym.id);
  }
}

}  // namespace tessera
