// SafetensorsFile: round trip of files built by the independent test writer,
// and one test per class of corruption, each checking the status code and that
// the message names the file and the offending tensor or key.
#include "common/safetensors/safetensors_file.h"

#include <cstring>
#include <string>
#include <vector>

#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/safetensors/safetensors_test_util.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::StatusIs;
using testing::F32Bytes;
using testing::SafetensorsBytes;
using testing::TestTensor;
using testing::U16Bytes;
using testing::WriteSafetensors;

constexpr char kName[] = "test.safetensors";

absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const std::string& bytes) {
  return SafetensorsFile::FromBuffer(kName, bytes);
}

// A one-tensor header around `entry`, with `data_len` data bytes.
absl::StatusOr<std::unique_ptr<SafetensorsFile>> ParseEntry(const std::string& entry,
                                                             size_t data_len = 16) {
  return Parse(SafetensorsBytes("{\"w\":" + entry + "}", std::string(data_len, '\x11')));
}

TEST(SafetensorsFileTest, RoundTripsTensorsAndMetadata) {
  // 1.0, -2.0, 0.5 in F16 and BF16, written as bit patterns (not by our code).
  const std::vector<TestTensor> tensors = {
      {"model.embed_tokens.weight", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})},
      {"model.norm.weight", "F16", {3}, U16Bytes({0x3C00, 0xC000, 0x3800})},
      {"lm_head.weight", "BF16", {1, 3}, U16Bytes({0x3F80, 0xC000, 0x3F00})},
      {"scalar", "F32", {}, F32Bytes({7})},
      {"empty", "F32", {0, 4}, ""},
  };
  const std::string bytes = WriteSafetensors(tensors, {{"format", "pt"}});
  testing::TempDir dir;
  const std::string path = dir.File("m.safetensors");
  testing::WriteFile(path, bytes);
  ASSERT_OK_AND_ASSIGN(auto f, SafetensorsFile::Open(path));
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->size(), bytes.size());
  ASSERT_EQ(f->tensors().size(), tensors.size());
  EXPECT_THAT(f->metadata(), ElementsAre(std::make_pair(std::string("format"), std::string("pt"))));
  // Sorted by name.
  EXPECT_EQ(f->tensors()[0].name, "empty");
  EXPECT_EQ(f->tensors()[1].name, "lm_head.weight");

  uint64_t offset = 0;
  for (const TestTensor& want : tensors) {
    const SafetensorsTensorInfo* t = f->FindTensor(want.name);
    ASSERT_NE(t, nullptr) << want.name;
    EXPECT_EQ(SafetensorsDtypeName(t->dtype), want.dtype);
    EXPECT_EQ(t->shape, want.shape);
    EXPECT_EQ(t->begin, offset);
    EXPECT_EQ(t->size_bytes(), want.bytes.size());
    offset += want.bytes.size();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->TensorData(*t)), t->size_bytes()),
              want.bytes)
        << want.name;
    // Zero-copy: the data lies inside the file image at 8 + N + begin.
    EXPECT_EQ(f->TensorData(*t), f->data() + f->data_start() + t->begin);
  }
  EXPECT_EQ(f->FindTensor("model.embed_tokens.weight")->num_elements(), 6);
  EXPECT_EQ(f->FindTensor("scalar")->num_elements(), 1);
  EXPECT_EQ(f->FindTensor("empty")->num_elements(), 0);
  EXPECT_EQ(f->FindTensor("nope"), nullptr);
  float first;
  std::memcpy(&first, f->TensorData(*f->FindTensor("model.embed_tokens.weight")) + 4, 4);
  EXPECT_EQ(first, 2.0f);
}

TEST(SafetensorsFileTest, AcceptsEmptyHeaderObject) {
  ASSERT_OK_AND_ASSIGN(auto f, Parse(SafetensorsBytes("{}", "")));
  EXPECT_TRUE(f->tensors().empty());
}

TEST(SafetensorsFileTest, MissingFileIsNotFound) {
  EXPECT_THAT(SafetensorsFile::Open("/nonexistent/x.safetensors"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/x.safetensors")));
}

TEST(SafetensorsFileTest, RejectsFileShorterThanLength) {
  EXPECT_THAT(Parse("\x02\0\0"), StatusIs(absl::StatusCode::kDataLoss,
                                          AllOf(HasSubstr(kName), HasSubstr("too short"))));
}

TEST(SafetensorsFileTest, RejectsHeaderLengthBeyondFile) {
  std::string b = SafetensorsBytes("{}", "");
  b[0] = 3;  // 3 > the 2 bytes present
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr(kName), HasSubstr("header length 3"))));
  b[0] = 0;
  b[7] = '\xff';  // a huge length must not be trusted for any allocation
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header length")));
}

TEST(SafetensorsFileTest, RejectsBadJson) {
  EXPECT_THAT(Parse(SafetensorsBytes("{\"w\":", "")),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(kName), HasSubstr("JSON"))));
}

TEST(SafetensorsFileTest, RejectsNonObjectHeader) {
  EXPECT_THAT(Parse(SafetensorsBytes("[1,2]", "")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not a JSON object")));
}

TEST(SafetensorsFileTest, RejectsNonObjectEntry) {
  EXPECT_THAT(ParseEntry("[0,4]"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'w'"), HasSubstr("not an object"))));
}

TEST(SafetensorsFileTest, RejectsMissingOrIllTypedDtype) {
  EXPECT_THAT(ParseEntry(R"({"shape":[4],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("tensor 'w'"), HasSubstr("'dtype'"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":32,"shape":[4],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("tensor 'w'"), HasSubstr("'dtype'"))));
}

TEST(SafetensorsFileTest, RejectsMissingOrIllTypedShape) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("tensor 'w'"), HasSubstr("'shape'"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("tensor 'w'"), HasSubstr("'shape'"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("tensor 'w'"), HasSubstr("'shape'"))));
}

TEST(SafetensorsFileTest, RejectsNegativeDimension) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'w'"), HasSubstr("non-negative"))));
}

TEST(SafetensorsFileTest, RejectsMissingOrIllTypedOffsets) {
  for (const char* entry : {R"({"dtype":"F32","shape":[4]})",
                            R"({"dtype":"F32","shape":[4],"data_offsets":[0]})",
                            R"({"dtype":"F32","shape":[4],"data_offsets":[0,16,32]})",
                            R"({"dtype":"F32","shape":[4],"data_offsets":"0-16"})",
                            R"({"dtype":"F32","shape":[4],"data_offsets":[0,16.0]})",
                            R"({"dtype":"F32","shape":[4],"data_offsets":[-1,15]})"}) {
    EXPECT_THAT(ParseEntry(entry), StatusIs(absl::StatusCode::kDataLoss,
                                            AllOf(HasSubstr("tensor 'w'"), HasSubstr("'data_offsets'"))))
        << entry;
  }
}

TEST(SafetensorsFileTest, RejectsOffsetsBeyondData) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})", 15),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'w'"), HasSubstr("past the data"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("past the data")));
}

TEST(SafetensorsFileTest, RejectsBeginAfterEnd) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("tensor 'w'"), HasSubstr("begin after"))));
}

TEST(SafetensorsFileTest, RejectsSizeMismatch) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[3],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("tensor 'w'"), HasSubstr("needs 12"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"BF16","shape":[2,4],"data_offsets":[0,8]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("needs 16")));
}

TEST(SafetensorsFileTest, RejectsShapeWhoseByteSizeOverflows) {
  // 2^32 * 2^32 * 4 wraps to 0 in 64 bits; that must not pass as "0 bytes".
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("tensor 'w'"), HasSubstr("overflows"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,0]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tensor 'w'")));
}

TEST(SafetensorsFileTest, RejectsOverlappingTensors) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  EXPECT_THAT(Parse(SafetensorsBytes(header, std::string(12, '\0'))),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'b'"), HasSubstr("overlap tensor 'a'"))));
  // A range nested inside an earlier, longer one.
  const std::string nested =
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  EXPECT_THAT(Parse(SafetensorsBytes(nested, std::string(16, '\0'))),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("overlap tensor 'a'")));
}

TEST(SafetensorsFileTest, RejectsDuplicateTensorNames) {
  // nlohmann::json on its own would silently keep the second entry.
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  EXPECT_THAT(Parse(SafetensorsBytes(header, std::string(8, '\0'))),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'w' appears twice"))));
}

TEST(SafetensorsFileTest, UnsupportedDtypeIsUnimplemented) {
  EXPECT_THAT(ParseEntry(R"({"dtype":"I8","shape":[16],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr(kName), HasSubstr("tensor 'w'"), HasSubstr("'I8'"))));
  EXPECT_THAT(ParseEntry(R"({"dtype":"F64","shape":[2],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("'F64'")));
  EXPECT_THAT(ParseEntry(R"({"dtype":"Q9","shape":[2],"data_offsets":[0,16]})"),
              StatusIs(absl::StatusCode::kUnimplemented, AllOf(HasSubstr("unknown"), HasSubstr("'Q9'"))));
}

TEST(SafetensorsFileTest, RejectsNonStringMetadata) {
  EXPECT_THAT(Parse(SafetensorsBytes(R"({"__metadata__":{"format":1}})", "")),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr("'__metadata__.format'"))));
  EXPECT_THAT(Parse(SafetensorsBytes(R"({"__metadata__":"pt"})", "")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'__metadata__'")));
}

}  // namespace
}  // namespace tessera
