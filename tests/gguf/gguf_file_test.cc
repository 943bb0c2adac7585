// GgufFile accessors, GgufWriter layout and round trip, and MappedFile.
#include "common/gguf/gguf_file.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "common/mapped_file.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

std::string TempPath(const std::string& stem) {
  return ::testing::TempDir() + "/" + stem + "." + std::to_string(::getpid());
}

std::unique_ptr<GgufFile> OpenSmall() {
  auto f = GgufFile::FromBuffer(testing::kSmallName, testing::SmallBytes());
  EXPECT_THAT(f, IsOk());
  return f.ok() ? std::move(f).value() : nullptr;
}

// The writer's output for one key and one tensor, spelled out byte by byte
// from the GGUF spec.
TEST(GgufWriterTest, SerializesSpecLayout) {
  GgufWriter w;
  w.SetUint32("k", 5);
  ASSERT_THAT(w.AddTensor("t", {4}, GgmlType::kF32, EncodeF32({1, 2, 3, 4})), IsOk());
  std::string expected;
  auto bytes = [&](std::initializer_list<int> b) {
    for (int x : b) expected.push_back(static_cast<char>(x));
  };
  expected += "GGUF";
  bytes({3, 0, 0, 0});                   // version
  bytes({1, 0, 0, 0, 0, 0, 0, 0});       // tensor count
  bytes({1, 0, 0, 0, 0, 0, 0, 0});       // kv count
  bytes({1, 0, 0, 0, 0, 0, 0, 0, 'k'});  // key
  bytes({4, 0, 0, 0, 5, 0, 0, 0});       // uint32 5
  bytes({1, 0, 0, 0, 0, 0, 0, 0, 't'});  // tensor name
  bytes({1, 0, 0, 0});                   // n_dims
  bytes({4, 0, 0, 0, 0, 0, 0, 0});       // ne0
  bytes({0, 0, 0, 0});                   // F32
  bytes({0, 0, 0, 0, 0, 0, 0, 0});       // offset
  ASSERT_EQ(expected.size(), 74u);
  expected.resize(96, '\0');  // pad to 32
  bytes({0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40});
  expected.resize(128, '\0');
  EXPECT_EQ(w.Serialize(), expected);
}

TEST(GgufWriterTest, RoundTripsMetadataAndTensors) {
  auto f = OpenSmall();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->path(), testing::kSmallName);
  EXPECT_THAT(f->Keys(),
              ElementsAre("general.architecture", "test.u32", "test.i32", "test.f32", "test.bool",
                          "test.str", "test.strs", "test.ints", "test.floats", "test.u64"));
  EXPECT_EQ(f->GetUint("test.u32").value(), 7u);
  EXPECT_EQ(f->GetInt("test.u32").value(), 7);
  EXPECT_EQ(f->GetInt("test.i32").value(), -5);
  EXPECT_EQ(f->GetFloat("test.i32").value(), -5.0);
  EXPECT_EQ(f->GetFloat("test.f32").value(), 0.25);
  EXPECT_EQ(f->GetBool("test.bool").value(), true);
  EXPECT_EQ(f->GetString("test.str").value(), "hello");
  EXPECT_THAT(f->GetStringArray("test.strs").value(), ElementsAre("a", "bc", ""));
  EXPECT_THAT(f->GetIntArray("test.ints").value(), ElementsAre(1, -2, 3));
  EXPECT_THAT(f->GetFloatArray("test.floats").value(), ElementsAre(0.5f, -1.5f));
  EXPECT_THAT(f->GetFloatArray("test.ints").value(), ElementsAre(1.0f, -2.0f, 3.0f));
  EXPECT_EQ(f->GetUint("test.u64").value(), 0xfedcba9876543210ull);
  EXPECT_EQ(f->GetArrayLength("test.strs").value(), 3u);
  EXPECT_EQ(f->GetType("test.floats").value(), GgufValueType::kArray);

  GgufWriter w = testing::SmallWriter();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"a.f32", EncodeF32(testing::RandomValues(16, 1))},
      {"b.f16", EncodeF16(testing::RandomValues(32, 2))},
      {"c.q8", EncodeQ8_0(testing::RandomValues(128, 3))},
      {"d.q41", EncodeQ4_1(testing::RandomValues(256, 4))}};
  ASSERT_EQ(f->tensors().size(), expected.size());
  EXPECT_EQ(f->header_bytes() % 32, 0u);
  for (size_t i = 0; i < expected.size(); ++i) {
    const GgufTensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.name, expected[i].first);
    EXPECT_EQ(f->FindTensor(t.name), &t);
    EXPECT_EQ(t.offset % 32, 0u);
    ASSERT_EQ(t.size_bytes, expected[i].second.size()) << t.name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->TensorData(t)), t.size_bytes),
              expected[i].second)
        << t.name;
  }
  EXPECT_THAT(f->tensors()[0].shape, ElementsAre(8, 2));
  EXPECT_EQ(f->tensors()[0].num_elements(), 16);
  EXPECT_EQ(f->tensors()[2].type, GgmlType::kQ8_0);
  EXPECT_EQ(f->tensors()[2].size_bytes, 4u * 34);
  EXPECT_EQ(f->tensors()[3].size_bytes, 8u * 20);
  EXPECT_EQ(f->FindTensor("nope"), nullptr);
}

TEST(GgufWriterTest, HonoursGeneralAlignment) {
  GgufWriter w;
  w.SetUint32("general.alignment", 64);
  ASSERT_THAT(w.AddTensor("x", {4}, GgmlType::kF32, EncodeF32({1, 2, 3, 4})), IsOk());
  ASSERT_THAT(w.AddTensor("y", {4}, GgmlType::kF32, EncodeF32({5, 6, 7, 8})), IsOk());
  ASSERT_OK_AND_ASSIGN(auto f, GgufFile::FromBuffer("aligned", w.Serialize()));
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->header_bytes() % 64, 0u);
  EXPECT_EQ(f->FindTensor("y")->offset, 64u);
}

TEST(GgufWriterTest, AddTensorValidates) {
  GgufWriter w;
  EXPECT_THAT(w.AddTensor("t", {4}, GgmlType::kF32, std::string(15, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'t'"), HasSubstr("needs 16 bytes, got 15"))));
  EXPECT_THAT(w.AddTensor("q", {16}, GgmlType::kQ8_0, std::string(34, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block")));
  EXPECT_THAT(w.AddTensor("z", {4, 0}, GgmlType::kF32, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'z'")));
  EXPECT_THAT(w.AddTensor("r", {1, 1, 1, 1, 1}, GgmlType::kF32, std::string(4, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimensions")));
  EXPECT_THAT(w.AddTensor("e", {31}, GgmlType::kQ8_0, EncodeQ8_0(std::vector<float>(31))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'e'")));
  ASSERT_THAT(w.AddTensor("t", {4}, GgmlType::kF32, std::string(16, '\0')), IsOk());
  EXPECT_THAT(w.AddTensor("t", {4}, GgmlType::kF32, std::string(16, '\0')),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'t'")));
}

TEST(GgufWriterTest, WriteFileThenOpenMapsTheSameBytes) {
  const std::string path = TempPath("writer_roundtrip.gguf");
  GgufWriter w = testing::SmallWriter();
  ASSERT_THAT(w.WriteFile(path), IsOk());
  ASSERT_OK_AND_ASSIGN(auto f, GgufFile::Open(path));
  const std::string bytes = w.Serialize();
  ASSERT_EQ(f->size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), f->size()), bytes);
  EXPECT_EQ(f->path(), path);
  std::remove(path.c_str());

  EXPECT_THAT(w.WriteFile("/nonexistent-dir/x.gguf"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent-dir/x.gguf")));
}

// Tensors produced while the file is written give the same file as the
// same bytes given up front, each producer runs once per write, in file
// order, and a producer that makes the wrong number of bytes fails the
// write naming its tensor.
TEST(GgufWriterTest, ProducedTensorsStreamTheSameFile) {
  const std::string a_bytes = EncodeF32(testing::RandomValues(48, 7));
  const std::string b_bytes = EncodeQ8_0(testing::RandomValues(64, 8));
  GgufWriter eager, lazy;
  for (GgufWriter* w : {&eager, &lazy}) w->SetString("general.architecture", "llama");
  ASSERT_THAT(eager.AddTensor("a", {16, 3}, GgmlType::kF32, a_bytes), IsOk());
  ASSERT_THAT(eager.AddTensor("b", {64}, GgmlType::kQ8_0, b_bytes), IsOk());
  std::vector<std::string> calls;
  ASSERT_THAT(lazy.AddTensor("a", {16, 3}, GgmlType::kF32,
                             GgufWriter::Producer([&] {
                               calls.push_back("a");
                               return a_bytes;
                             })),
              IsOk());
  ASSERT_THAT(lazy.AddTensor("b", {64}, GgmlType::kQ8_0,
                             GgufWriter::Producer([&] {
                               calls.push_back("b");
                               return b_bytes;
                             })),
              IsOk());
  const std::string path = TempPath("writer_produced.gguf");
  ASSERT_THAT(lazy.WriteFile(path), IsOk());
  EXPECT_EQ(calls, (std::vector<std::string>{"a", "b"}));
  ASSERT_OK_AND_ASSIGN(auto f, GgufFile::Open(path));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), f->size()), eager.Serialize());
  std::remove(path.c_str());

  GgufWriter broken;
  ASSERT_THAT(broken.AddTensor("short", {8}, GgmlType::kF32,
                               GgufWriter::Producer([] { return std::string(12, '\0'); })),
              IsOk());
  EXPECT_THAT(broken.WriteFile(path),
              StatusIs(absl::StatusCode::kInternal, AllOf(HasSubstr("'short'"),
                                                          HasSubstr("12 bytes"),
                                                          HasSubstr("32"))));
  std::remove(path.c_str());
  EXPECT_THAT(broken.AddTensor("none", {8}, GgmlType::kF32, GgufWriter::Producer()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'none'")));
}

TEST(GgufFileTest, MissingKeyIsNotFoundNamingFileAndKey) {
  auto f = OpenSmall();
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->Has("llama.block_count"));
  EXPECT_TRUE(f->Has("test.u32"));
  EXPECT_THAT(f->GetUint("llama.block_count"),
              StatusIs(absl::StatusCode::kNotFound,
                       "small-test.gguf: metadata key 'llama.block_count' not found"));
  EXPECT_THAT(f->GetStringArray("nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
}

TEST(GgufFileTest, WrongTypeIsInvalidArgumentNamingExpectedAndActual) {
  auto f = OpenSmall();
  ASSERT_NE(f, nullptr);
  auto is_mismatch = [](const char* key, const char* actual, const char* expected) {
    return StatusIs(absl::StatusCode::kInvalidArgument,
                    AllOf(HasSubstr(testing::kSmallName), HasSubstr(key), HasSubstr(actual),
                          HasSubstr(expected)));
  };
  EXPECT_THAT(f->GetUint("test.str"), is_mismatch("'test.str'", "string", "unsigned integer"));
  EXPECT_THAT(f->GetString("test.u32"), is_mismatch("'test.u32'", "uint32", "expected string"));
  EXPECT_THAT(f->GetBool("test.i32"), is_mismatch("'test.i32'", "int32", "bool"));
  EXPECT_THAT(f->GetFloat("test.bool"), is_mismatch("'test.bool'", "bool", "number"));
  EXPECT_THAT(f->GetStringArray("test.ints"),
              is_mismatch("'test.ints'", "array of int32", "array of string"));
  EXPECT_THAT(f->GetIntArray("test.floats"),
              is_mismatch("'test.floats'", "array of float32", "array of integer"));
  EXPECT_THAT(f->GetFloatArray("test.strs"),
              is_mismatch("'test.strs'", "array of string", "number"));
  EXPECT_THAT(f->GetArrayLength("test.str"), is_mismatch("'test.str'", "string", "array"));
  // Range errors: negative for unsigned, > INT64_MAX for signed.
  EXPECT_THAT(f->GetUint("test.i32"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'test.i32'"), HasSubstr("-5"), HasSubstr("non-negative"))));
  EXPECT_THAT(f->GetInt("test.u64"), StatusIs(absl::StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr("'test.u64'"), HasSubstr("int64"))));
}

// Arrays of arrays are valid GGUF; they parse, report their length, and are
// refused by the flat accessors. The file is built by hand: the writer has no
// nested arrays.
std::string NestedArrayFile(int depth) {
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(char(v >> (8 * i)));
  };
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(char(v >> (8 * i)));
  };
  u32(3);
  u64(0);  // tensors
  u64(1);  // keys
  u64(11);
  b += "test.nested";
  u32(9);  // array
  for (int level = 1; level < depth; ++level) {
    u32(9);  // of arrays
    u64(1);
  }
  u32(4);  // innermost: uint32 x 3
  u64(3);
  u32(1);
  u32(2);
  u32(3);
  return b;
}

TEST(GgufFileTest, ParsesNestedArrays) {
  ASSERT_OK_AND_ASSIGN(auto f, GgufFile::FromBuffer("nested", NestedArrayFile(2)));
  EXPECT_EQ(f->GetArrayLength("test.nested").value(), 1u);
  EXPECT_THAT(f->GetIntArray("test.nested"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'test.nested'"), HasSubstr("array of array"))));
  ASSERT_OK_AND_ASSIGN(auto flat, GgufFile::FromBuffer("flat", NestedArrayFile(1)));
  EXPECT_THAT(flat->GetIntArray("test.nested").value(), ElementsAre(1, 2, 3));
  EXPECT_EQ(flat->header_bytes(), flat->size());  // no tensors: padding may be absent
}

TEST(GgufFileTest, RejectsArraysNestedTooDeeply) {
  EXPECT_THAT(GgufFile::FromBuffer("deep", NestedArrayFile(4)), IsOk());
  EXPECT_THAT(GgufFile::FromBuffer("deep", NestedArrayFile(5)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("deep: "), HasSubstr("'test.nested'"), HasSubstr("nests"))));
}

TEST(GgufFileTest, OpenMissingFileIsNotFoundNamingPath) {
  EXPECT_THAT(GgufFile::Open("/no/such/model.gguf"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/no/such/model.gguf")));
}

TEST(MappedFileTest, MapsContents) {
  const std::string path = TempPath("mapped.bin");
  std::ofstream(path, std::ios::binary) << "hello, mmap";
  ASSERT_OK_AND_ASSIGN(auto m, MappedFile::Open(path));
  EXPECT_EQ(m->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), "hello, mmap");
  EXPECT_EQ(m->path(), path);
  std::remove(path.c_str());
}

TEST(MappedFileTest, EmptyFileHasSizeZero) {
  const std::string path = TempPath("empty.bin");
  std::ofstream(path, std::ios::binary).flush();
  ASSERT_OK_AND_ASSIGN(auto m, MappedFile::Open(path));
  EXPECT_EQ(m->size(), 0u);
  EXPECT_NE(m->data(), nullptr);
  // And an empty file is not a GGUF file.
  EXPECT_THAT(GgufFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(path), HasSubstr("magic"))));
  std::remove(path.c_str());
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  EXPECT_THAT(MappedFile::Open("/no/such/file"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/no/such/file")));
}

TEST(MappedFileTest, DirectoryIsInvalidArgument) {
  EXPECT_THAT(MappedFile::Open("/"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/")));
}

}  // namespace
}  // namespace tessera
