// Shared fixtures for the GGUF tests: the small writer-built reference file,
// byte-patching helpers that locate fields by walking the known layout, and
// the path of the real model.
#ifndef TESSERA_TESTS_GGUF_GGUF_TEST_UTIL_H_
#define TESSERA_TESTS_GGUF_GGUF_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "gtest/gtest.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {

// The real model (DefaultModelPath); "" after a test failure if it is missing.
inline std::string RealModelPath() {
  const std::string path = DefaultModelPath();
  return std::ifstream(path).good() ? path : "";
}

inline std::vector<float> RandomValues(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Name under which the small file is parsed; error messages must contain it.
inline constexpr char kSmallName[] = "small-test.gguf";

// The small reference file: ten keys of every writer-supported type and four
// tensors (F32, F16, Q8_0, Q4_1). The last tensor is 160 bytes, a multiple of
// the alignment, so the file ends exactly where its data ends and every
// truncation is an error.
inline GgufWriter SmallWriter() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("test.u32", 7);
  w.SetInt32("test.i32", -5);
  w.SetFloat32("test.f32", 0.25f);
  w.SetBool("test.bool", true);
  w.SetString("test.str", "hello");
  w.SetStringArray("test.strs", {"a", "bc", ""});
  w.SetInt32Array("test.ints", {1, -2, 3});
  w.SetFloat32Array("test.floats", {0.5f, -1.5f});
  w.SetUint64("test.u64", 0xfedcba9876543210ull);
  EXPECT_TRUE(w.AddTensor("a.f32", {8, 2}, GgmlType::kF32, EncodeF32(RandomValues(16, 1))).ok());
  EXPECT_TRUE(w.AddTensor("b.f16", {32}, GgmlType::kF16, EncodeF16(RandomValues(32, 2))).ok());
  EXPECT_TRUE(w.AddTensor("c.q8", {64, 2}, GgmlType::kQ8_0, EncodeQ8_0(RandomValues(128, 3))).ok());
  EXPECT_TRUE(
      w.AddTensor("d.q41", {32, 8}, GgmlType::kQ4_1, EncodeQ4_1(RandomValues(256, 4))).ok());
  return w;
}

inline std::string SmallBytes() { return SmallWriter().Serialize(); }

inline void PutU32At(std::string* bytes, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*bytes)[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void PutU64At(std::string* bytes, size_t pos, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*bytes)[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint64_t GetU64At(const std::string& bytes, size_t pos) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[pos + i]);
  return v;
}

// The position of the u64 length that precedes `s` (a key or tensor name).
inline size_t FindLengthPrefixed(const std::string& bytes, const std::string& s) {
  std::string needle(8, '\0');
  PutU64At(&needle, 0, s.size());
  needle += s;
  size_t pos = bytes.find(needle);
  EXPECT_NE(pos, std::string::npos) << "'" << s << "' not in the test file";
  return pos;
}

// Field positions of one metadata entry or tensor descriptor.
struct KeyLayout {
  size_t length;  // u64 key length
  size_t type;    // u32 value type
  size_t value;   // first byte of the value
};
inline KeyLayout FindKey(const std::string& bytes, const std::string& key) {
  size_t p = FindLengthPrefixed(bytes, key);
  return {p, p + 8 + key.size(), p + 8 + key.size() + 4};
}

struct TensorLayout {
  size_t name_length;  // u64
  size_t n_dims;       // u32
  size_t dims;         // n_dims x u64
  size_t type;         // u32
  size_t offset;       // u64
};
inline TensorLayout FindTensorInfo(const std::string& bytes, const std::string& name,
                                   uint32_t n_dims) {
  size_t p = FindLengthPrefixed(bytes, name);
  TensorLayout t;
  t.name_length = p;
  t.n_dims = p + 8 + name.size();
  t.dims = t.n_dims + 4;
  t.type = t.dims + 8 * n_dims;
  t.offset = t.type + 4;
  return t;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_GGUF_GGUF_TEST_UTIL_H_
