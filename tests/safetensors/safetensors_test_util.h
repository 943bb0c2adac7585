// Test helpers: a minimal, independent safetensors writer (string-built JSON,
// no shared code with the reader) and temporary files.
#ifndef TESSERA_TESTS_SAFETENSORS_SAFETENSORS_TEST_UTIL_H_
#define TESSERA_TESTS_SAFETENSORS_SAFETENSORS_TEST_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tessera {
namespace testing {

struct TestTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian element bytes
};

// 8-byte little-endian length + header + data, verbatim.
inline std::string SafetensorsBytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

// Lays the tensors out back to back in the given order and pads the header
// with spaces to a multiple of 8 bytes, as the reference writer does.
inline std::string WriteSafetensors(const std::vector<TestTensor>& tensors,
                                    const std::vector<std::pair<std::string, std::string>>& meta = {}) {
  std::string header = "{";
  bool first = true;
  if (!meta.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < meta.size(); ++i) {
      if (i) header += ",";
      header += "\"" + meta[i].first + "\":\"" + meta[i].second + "\"";
    }
    header += "}";
    first = false;
  }
  std::string data;
  for (const TestTensor& t : tensors) {
    if (!first) header += ",";
    first = false;
    header += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) header += ",";
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  return SafetensorsBytes(header, data);
}

inline std::string F32Bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.data(), s.size());
  return s;
}

inline std::string U16Bytes(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) {
    s += static_cast<char>(x & 0xff);
    s += static_cast<char>(x >> 8);
  }
  return s;
}

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tessera_st_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = buf.data();
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

}  // namespace testing
}  // namespace tessera

#endif  // TESSERA_TESTS_SAFETENSORS_SAFETENSORS_TEST_UTIL_H_
