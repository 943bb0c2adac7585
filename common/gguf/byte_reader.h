// Bounds-checked little-endian cursor over an immutable byte range.
//
// Internal to the GGUF reader. Every read checks the bytes remaining first, so
// a corrupt length or count can never move the cursor outside the range; a
// failed read leaves the cursor where it was and returns false so that the
// caller, which knows what it was reading, can word the error. Not
// thread-safe (it is a cursor); the bytes it reads must outlive it.
#ifndef TESSERA_COMMON_GGUF_BYTE_READER_H_
#define TESSERA_COMMON_GGUF_BYTE_READER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera::gguf_internal {

// This abseil build has its own string_view type, distinct from std's; StrCat
// and the hash containers need it.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Assembles an unsigned little-endian integer of `n` <= 8 bytes.
inline uint64_t LoadLittleEndian(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i > 0; --i) v = (v << 8) | p[i - 1];
  return v;
}

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  bool ReadU32(uint32_t* out) {
    if (remaining() < 4) return false;
    *out = static_cast<uint32_t>(LoadLittleEndian(data_ + pos_, 4));
    pos_ += 4;
    return true;
  }
  bool ReadU64(uint64_t* out) {
    if (remaining() < 8) return false;
    *out = LoadLittleEndian(data_ + pos_, 8);
    pos_ += 8;
    return true;
  }
  // Reads `n` <= 8 bytes as an unsigned little-endian integer.
  bool ReadUnsigned(size_t n, uint64_t* out) {
    if (remaining() < n) return false;
    *out = LoadLittleEndian(data_ + pos_, n);
    pos_ += n;
    return true;
  }
  // The bytes from `begin` (an earlier pos()) up to the cursor.
  std::string_view Since(size_t begin) const {
    return std::string_view(reinterpret_cast<const char*>(data_ + begin), pos_ - begin);
  }
  bool Skip(uint64_t n) {
    if (remaining() < n) return false;
    pos_ += static_cast<size_t>(n);
    return true;
  }
  // A view of the next `n` bytes, which must be available.
  bool ReadBytes(uint64_t n, std::string_view* out) {
    if (remaining() < n) return false;
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace tessera::gguf_internal

#endif  // TESSERA_COMMON_GGUF_BYTE_READER_H_
