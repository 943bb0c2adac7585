#include "common/tokenizer/byte_level.h"

#include <array>
#include <vector>

#include "common/tokenizer/unicode.h"

namespace tessera {
namespace {

// Bytes that are printable and not a space in Latin-1 stand for themselves.
bool MapsToItself(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<uint32_t, 256> byte_to_cpt{};
  std::array<int16_t, 0x144> cpt_to_byte{};  // every mapped code point is < 0x144
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.cpt_to_byte.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      t.byte_to_cpt[b] = MapsToItself(b) ? static_cast<uint32_t>(b) : next++;
      t.cpt_to_byte[t.byte_to_cpt[b]] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

uint32_t ByteToCodepoint(uint8_t byte) { return GetTables().byte_to_cpt[byte]; }

int CodepointToByte(uint32_t cpt) {
  const Tables& t = GetTables();
  return cpt < t.cpt_to_byte.size() ? t.cpt_to_byte[cpt] : -1;
}

void AppendByteEncoded(std::string_view raw, std::string* out) {
  for (char c : raw) AppendUtf8(ByteToCodepoint(static_cast<uint8_t>(c)), out);
}

bool ByteDecode(std::string_view encoded, std::string* out) {
  bool all_mapped = true;
  for (uint32_t cpt : DecodeUtf8Lenient(encoded)) {
    const int b = CodepointToByte(cpt);
    if (b >= 0) {
      out->push_back(static_cast<char>(b));
    } else {
      all_mapped = false;
      AppendUtf8(cpt, out);
    }
  }
  return all_mapped;
}

}  // namespace tessera
