// One test per class of corrupt GGUF input. Each starts from the valid small
// file, patches the field in question, and checks the exact status code and
// that the message names the file and the key or tensor at fault.
#include <string>
#include <utility>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using testing::FindKey;
using testing::FindTensorInfo;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::kSmallName;
using testing::PutU32At;
using testing::PutU64At;
using testing::StatusIs;

absl::StatusOr<std::unique_ptr<GgufFile>> Parse(std::string bytes) {
  return GgufFile::FromBuffer(kSmallName, std::move(bytes));
}

// DATA_LOSS whose message starts with the file name and contains `what`.
::testing::Matcher<const absl::StatusOr<std::unique_ptr<GgufFile>>&> IsDataLoss(
    const std::string& what) {
  return StatusIs(absl::StatusCode::kDataLoss,
                  AllOf(HasSubstr(std::string(kSmallName) + ": "), HasSubstr(what)));
}

TEST(GgufCorruptionTest, BaselineIsValid) { EXPECT_THAT(Parse(testing::SmallBytes()), IsOk()); }

TEST(GgufCorruptionTest, RejectsBadMagic) {
  std::string b = testing::SmallBytes();
  b[3] = 'X';
  EXPECT_THAT(Parse(b), IsDataLoss("magic bytes are 47 47 55 58"));
  EXPECT_THAT(Parse("GGU"), IsDataLoss("magic"));
}

TEST(GgufCorruptionTest, RejectsBadVersion) {
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    std::string b = testing::SmallBytes();
    PutU32At(&b, 4, version);
    EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented,
                                   AllOf(HasSubstr(kSmallName),
                                         HasSubstr("version " + std::to_string(version)))));
  }
  std::string b = testing::SmallBytes();
  PutU32At(&b, 4, 0x03000000u);  // a big-endian v3 file
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("big-endian")));
  PutU32At(&b, 4, 2);  // v2 has the same layout and is accepted
  EXPECT_THAT(Parse(b), IsOk());
}

TEST(GgufCorruptionTest, RejectsEveryTruncation) {
  const std::string full = testing::SmallBytes();
  for (size_t cut = 0; cut < full.size(); ++cut) {
    EXPECT_THAT(Parse(full.substr(0, cut)), IsDataLoss("")) << "cut at " << cut;
  }
}

TEST(GgufCorruptionTest, TruncationNamesWhatWasBeingRead) {
  const std::string full = testing::SmallBytes();
  // Cut inside the metadata, with the tensor count zeroed so that the header
  // check (4 tensors cannot fit in what is left) does not fire first.
  auto cut_in_metadata = [&](size_t cut) {
    std::string b = full.substr(0, cut);
    PutU64At(&b, 8, 0);
    return Parse(b);
  };
  const size_t str_value = FindKey(full, "test.str").value;  // u64 length, "hello"
  EXPECT_THAT(cut_in_metadata(str_value + 9), IsDataLoss("'test.str'"));
  const size_t strs_value = FindKey(full, "test.strs").value;
  EXPECT_THAT(cut_in_metadata(strs_value + 4 + 8 + 5), IsDataLoss("'test.strs'"));
  const size_t ints_value = FindKey(full, "test.ints").value;
  EXPECT_THAT(cut_in_metadata(ints_value + 4 + 8 + 6), IsDataLoss("'test.ints'"));
  // A cut in the metadata with the real tensor count fails on the counts.
  EXPECT_THAT(Parse(full.substr(0, str_value + 9)), IsDataLoss("claims 4 tensors"));
  // Inside the shape of c.q8.
  const size_t q8_dims = FindTensorInfo(full, "c.q8", 2).dims;
  EXPECT_THAT(Parse(full.substr(0, q8_dims + 10)), IsDataLoss("'c.q8'"));
  // Inside the data of the last tensor.
  EXPECT_THAT(Parse(full.substr(0, full.size() - 1)), IsDataLoss("'d.q41'"));
}

TEST(GgufCorruptionTest, RejectsOffsetPastTheEnd) {
  std::string b = testing::SmallBytes();
  PutU64At(&b, FindTensorInfo(b, "b.f16", 1).offset, 1ull << 40);
  EXPECT_THAT(Parse(b), IsDataLoss("'b.f16'"));
  PutU64At(&b, FindTensorInfo(b, "b.f16", 1).offset, 0xffffffffffffffe0ull);  // aligned, ~2^64
  EXPECT_THAT(Parse(b), IsDataLoss("'b.f16'"));
}

TEST(GgufCorruptionTest, RejectsUnalignedOffset) {
  std::string b = testing::SmallBytes();
  PutU64At(&b, FindTensorInfo(b, "c.q8", 2).offset, 64 + 4);
  EXPECT_THAT(Parse(b),
              IsDataLoss("'c.q8' has data offset 68, not a multiple of the alignment 32"));
}

TEST(GgufCorruptionTest, RejectsOverlappingTensors) {
  std::string b = testing::SmallBytes();
  // b.f16 (64 bytes at offset 64) moved onto a.f32 (64 bytes at offset 0).
  PutU64At(&b, FindTensorInfo(b, "b.f16", 1).offset, 32);
  EXPECT_THAT(Parse(b), IsDataLoss("tensors 'a.f32' (offset 0, 64 bytes) and 'b.f16' (offset 32) "
                                   "overlap"));
}

TEST(GgufCorruptionTest, RejectsShapeTypeSizeMismatch) {
  {  // Declaring b.f16 as F32 doubles its size onto c.q8.
    std::string b = testing::SmallBytes();
    PutU32At(&b, FindTensorInfo(b, "b.f16", 1).type, 0);
    EXPECT_THAT(Parse(b), IsDataLoss("'b.f16'"));
  }
  {  // Growing the last tensor's rows runs it past the end of the file.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindTensorInfo(b, "d.q41", 2).dims + 8, 9);
    EXPECT_THAT(Parse(b), IsDataLoss("'d.q41' data (offset 288, 180 bytes) extends past the end"));
  }
  {  // A Q8_0 row of 48 values is not whole blocks.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindTensorInfo(b, "c.q8", 2).dims, 48);
    EXPECT_THAT(Parse(b), IsDataLoss("'c.q8' has rows of 48 values, not a multiple of Q8_0's "
                                     "block of 32"));
  }
}

TEST(GgufCorruptionTest, RejectsZeroAndOverflowingDimensions) {
  std::string b = testing::SmallBytes();
  PutU64At(&b, FindTensorInfo(b, "a.f32", 2).dims + 8, 0);
  EXPECT_THAT(Parse(b), IsDataLoss("'a.f32' has dimension 1 = 0"));
  b = testing::SmallBytes();
  PutU64At(&b, FindTensorInfo(b, "a.f32", 2).dims, 1ull << 40);
  PutU64At(&b, FindTensorInfo(b, "a.f32", 2).dims + 8, 1ull << 40);
  EXPECT_THAT(Parse(b), IsDataLoss("'a.f32' has dimension 1"));
  b = testing::SmallBytes();
  PutU64At(&b, FindTensorInfo(b, "a.f32", 2).dims, 1ull << 63);
  EXPECT_THAT(Parse(b), IsDataLoss("'a.f32' has dimension 0"));
}

// A real ggml format without Tessera kernels is not corruption: it is named,
// with what Tessera supports.
TEST(GgufCorruptionTest, NamesUnsupportedGgmlTypesAndTheSupportedList) {
  for (const auto& [id, name] : std::vector<std::pair<uint32_t, std::string>>{
           {16u, "IQ2_XXS"}, {19u, "IQ1_S"}, {35u, "TQ2_0"}}) {
    std::string b = testing::SmallBytes();
    PutU32At(&b, FindTensorInfo(b, "c.q8", 2).type, id);
    const absl::Status s = Parse(b).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
    EXPECT_THAT(std::string(s.message()),
                AllOf(HasSubstr("'c.q8' is stored as " + name), HasSubstr("Q4_K, Q5_K, Q6_K"),
                      HasSubstr("IQ4_XS")));
  }
}

TEST(GgufCorruptionTest, RejectsUnknownTensorType) {
  for (uint32_t id : {4u, 5u, 31u, 99u, 0xffffffffu}) {
    std::string b = testing::SmallBytes();
    PutU32At(&b, FindTensorInfo(b, "c.q8", 2).type, id);
    EXPECT_THAT(Parse(b), IsDataLoss("'c.q8' has unknown ggml type id " + std::to_string(id)));
  }
}

TEST(GgufCorruptionTest, RejectsAbsurdTensorCount) {
  for (uint64_t n : {5ull, 1000ull, 1ull << 40, 0xffffffffffffffffull}) {
    std::string b = testing::SmallBytes();
    PutU64At(&b, 8, n);
    // 5 is plausible from the byte count alone; it fails on the fifth descriptor.
    EXPECT_THAT(Parse(b),
                IsDataLoss(n == 5 ? "tensor 4" : "claims " + std::to_string(n) + " tensors"));
  }
}

TEST(GgufCorruptionTest, RejectsAbsurdKeyValueCount) {
  for (uint64_t n : {1ull << 32, 0xffffffffffffffffull}) {
    std::string b = testing::SmallBytes();
    PutU64At(&b, 16, n);
    EXPECT_THAT(Parse(b), IsDataLoss("claims " + std::to_string(n) + " metadata key/value pairs"));
  }
}

TEST(GgufCorruptionTest, RejectsAbsurdStringLengths) {
  {  // A key's length.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindKey(b, "test.i32").length, 1ull << 62);
    EXPECT_THAT(Parse(b),
                IsDataLoss("the length of the key of metadata entry 2 is 4611686018427387904"));
  }
  {  // A string value's length.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindKey(b, "test.str").value, 0xffffffffffffffffull);
    EXPECT_THAT(Parse(b), IsDataLoss("the length of metadata key 'test.str' is"));
  }
  {  // An element of a string array.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindKey(b, "test.strs").value + 4 + 8 + 9, 1ull << 50);
    EXPECT_THAT(Parse(b), IsDataLoss("element 1 of metadata key 'test.strs'"));
  }
  {  // A tensor name's length.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindTensorInfo(b, "b.f16", 1).name_length, 1ull << 33);
    EXPECT_THAT(Parse(b), IsDataLoss("the length of the name of tensor 1"));
  }
  {  // A tensor name longer than GGUF's 64 bytes that still fits in the file.
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindTensorInfo(b, "b.f16", 1).name_length, 65);
    EXPECT_THAT(Parse(b), IsDataLoss("the name of tensor 1 is 65 bytes long"));
  }
}

TEST(GgufCorruptionTest, RejectsAbsurdArrayLengths) {
  for (const char* key : {"test.ints", "test.strs"}) {
    std::string b = testing::SmallBytes();
    PutU64At(&b, FindKey(b, key).value + 4, 1ull << 61);
    EXPECT_THAT(Parse(b), IsDataLoss(std::string("metadata key '") + key + "' claims " +
                                     std::to_string(1ull << 61)));
  }
}

TEST(GgufCorruptionTest, RejectsBadNDims) {
  for (uint32_t n : {0u, 5u, 0x80000000u}) {
    std::string b = testing::SmallBytes();
    PutU32At(&b, FindTensorInfo(b, "c.q8", 2).n_dims, n);
    EXPECT_THAT(Parse(b),
                IsDataLoss("'c.q8' has " + std::to_string(n) + " dimensions; expected 1 to 4"));
  }
}

TEST(GgufCorruptionTest, RejectsDuplicateTensorNames) {
  std::string b = testing::SmallBytes();
  // b.f16 renamed to a.f32 (same length, so nothing else moves).
  const size_t name = FindTensorInfo(b, "b.f16", 1).name_length + 8;
  b.replace(name, 5, "a.f32");
  EXPECT_THAT(Parse(b), IsDataLoss("duplicate tensor name 'a.f32'"));
}

TEST(GgufCorruptionTest, RejectsDuplicateKeys) {
  std::string b = testing::SmallBytes();
  const size_t key = FindKey(b, "test.i32").length + 8;
  b.replace(key, 8, "test.u32");
  EXPECT_THAT(Parse(b), IsDataLoss("duplicate metadata key 'test.u32'"));
}

TEST(GgufCorruptionTest, RejectsUnknownValueType) {
  std::string b = testing::SmallBytes();
  PutU32At(&b, FindKey(b, "test.u32").type, 13);
  EXPECT_THAT(Parse(b), IsDataLoss("metadata key 'test.u32' has unknown value type id 13"));
  b = testing::SmallBytes();
  PutU32At(&b, FindKey(b, "test.ints").value, 77);  // the element type
  EXPECT_THAT(Parse(b), IsDataLoss("the elements of metadata key 'test.ints' has unknown value"));
}

TEST(GgufCorruptionTest, RejectsNonBinaryBool) {
  std::string b = testing::SmallBytes();
  b[FindKey(b, "test.bool").value] = 2;
  EXPECT_THAT(Parse(b), IsDataLoss("metadata key 'test.bool' is a bool stored as 2"));
}

TEST(GgufCorruptionTest, RejectsBadAlignment) {
  for (uint32_t a : {0u, 48u}) {
    GgufWriter w = testing::SmallWriter();
    w.SetUint32("general.alignment", a);  // the writer keeps laying out at 32
    EXPECT_THAT(Parse(w.Serialize()),
                IsDataLoss("metadata key 'general.alignment' is " + std::to_string(a)));
  }
  GgufWriter w = testing::SmallWriter();
  w.SetString("general.alignment", "32");
  EXPECT_THAT(Parse(w.Serialize()),
              IsDataLoss("metadata key 'general.alignment' has type string; expected uint32"));
}

TEST(GgufCorruptionTest, RejectsDataSectionPastTheEnd) {
  // Only the header of the real layout, with no tensor data at all.
  std::string b = testing::SmallBytes();
  const size_t end_of_infos = FindTensorInfo(b, "d.q41", 2).offset + 8;
  ASSERT_NE(end_of_infos % 32, 0u) << "the fixture changed; pick another cut";
  EXPECT_THAT(Parse(b.substr(0, end_of_infos)), IsDataLoss("tensor data section would start"));
}

}  // namespace
}  // namespace tessera
