// SafetensorsModel: single-file and sharded model directories.
#include "common/safetensors/safetensors_model.h"

#include <string>

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
using testing::TempDir;
using testing::WriteFile;
using testing::WriteSafetensors;

constexpr char kIndex[] = R"({
  "metadata": {"total_size": 40},
  "weight_map": {
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
    "model.norm.weight": "model-00002-of-00002.safetensors",
    "lm_head.weight": "model-00002-of-00002.safetensors"
  }
})";

void WriteShards(const TempDir& dir) {
  WriteFile(dir.File("model-00001-of-00002.safetensors"),
            WriteSafetensors({{"model.embed_tokens.weight", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
                              {"model.layers.0.mlp.up_proj.weight", "F32", {1}, F32Bytes({5})}}));
  WriteFile(dir.File("model-00002-of-00002.safetensors"),
            WriteSafetensors({{"model.norm.weight", "F32", {2}, F32Bytes({6, 7})},
                              {"lm_head.weight", "F32", {1, 1}, F32Bytes({8})}}));
}

float FirstFloat(const SafetensorsModel::TensorRef& r) {
  float v;
  std::memcpy(&v, r.data(), 4);
  return v;
}

TEST(SafetensorsModelTest, OpensSingleFile) {
  TempDir dir;
  WriteFile(dir.File("model.safetensors"),
            WriteSafetensors({{"a", "F32", {1}, F32Bytes({3})}, {"b", "F32", {1}, F32Bytes({4})}}));
  ASSERT_OK_AND_ASSIGN(auto m, SafetensorsModel::Open(dir.path()));
  EXPECT_EQ(m->shards().size(), 1u);
  EXPECT_THAT(m->TensorNames(), ElementsAre("a", "b"));
  ASSERT_NE(m->FindTensor("b"), nullptr);
  EXPECT_EQ(FirstFloat(*m->FindTensor("b")), 4.0f);
  EXPECT_EQ(m->FindTensor("c"), nullptr);
}

TEST(SafetensorsModelTest, OpensShardedDirectory) {
  TempDir dir;
  WriteShards(dir);
  WriteFile(dir.File("model.safetensors.index.json"), kIndex);
  ASSERT_OK_AND_ASSIGN(auto m, SafetensorsModel::Open(dir.path()));
  EXPECT_EQ(m->shards().size(), 2u);
  EXPECT_EQ(m->num_tensors(), 4u);
  const SafetensorsModel::TensorRef* norm = m->FindTensor("model.norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_THAT(norm->file->path(), HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_EQ(FirstFloat(*norm), 6.0f);
  EXPECT_EQ(FirstFloat(*m->FindTensor("lm_head.weight")), 8.0f);
  EXPECT_EQ(FirstFloat(*m->FindTensor("model.layers.0.mlp.up_proj.weight")), 5.0f);
  EXPECT_EQ(m->FindTensor("model.embed_tokens.weight")->info->shape,
            (std::vector<int64_t>{2, 2}));
}

TEST(SafetensorsModelTest, EmptyDirectoryIsNotFound) {
  TempDir dir;
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
}

TEST(SafetensorsModelTest, MissingShardIsNotFound) {
  TempDir dir;
  WriteShards(dir);
  std::remove(dir.File("model-00002-of-00002.safetensors").c_str());
  WriteFile(dir.File("model.safetensors.index.json"), kIndex);
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("shard 'model-00002-of-00002.safetensors'"),
                             HasSubstr("'lm_head.weight'"))));
}

TEST(SafetensorsModelTest, TensorAbsentFromItsShardIsDataLoss) {
  TempDir dir;
  WriteShards(dir);
  std::string index = kIndex;
  index.replace(index.find("\"lm_head.weight\""), 16, "\"lm_head.bias\"");
  WriteFile(dir.File("model.safetensors.index.json"), index);
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("tensor 'lm_head.bias'"),
                             HasSubstr("shard 'model-00002-of-00002.safetensors'"))));
}

TEST(SafetensorsModelTest, RejectsMalformedIndex) {
  TempDir dir;
  WriteShards(dir);
  const std::string index_path = dir.File("model.safetensors.index.json");
  WriteFile(index_path, "{\"weight_map\": ");
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model.safetensors.index.json")));
  WriteFile(index_path, R"({"metadata": {}})");
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'weight_map'")));
  WriteFile(index_path, R"({"weight_map": {"a": 3}})");
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'weight_map.a'")));
  WriteFile(index_path, R"({"weight_map": {"a": "../escape.safetensors"}})");
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'weight_map.a'")));
}

TEST(SafetensorsModelTest, CorruptShardReportsShardPath) {
  TempDir dir;
  WriteShards(dir);
  WriteFile(dir.File("model-00001-of-00002.safetensors"), "garbage");
  WriteFile(dir.File("model.safetensors.index.json"), kIndex);
  EXPECT_THAT(SafetensorsModel::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model-00001-of-00002.safetensors")));
}

}  // namespace
}  // namespace tessera
