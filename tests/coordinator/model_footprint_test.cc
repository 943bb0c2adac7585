// ModelFootprint on the real SmolLM2 header and on small hand-built files:
// byte sizes are checked against arithmetic done here from the shapes, not
// against the parser's own size_bytes.
#include "coordinator/model_footprint.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;
using ::tessera::testing::DefaultModelPath;

// Bytes of `elements` values of the types SmolLM2's Q4_1 file uses, from the
// block layouts: F32 4 bytes each, Q4_1 20 bytes per 32, Q8_0 34 bytes per 32.
uint64_t BytesOf(GgmlType type, uint64_t elements) {
  switch (type) {
    case GgmlType::kF32:
      return 4 * elements;
    case GgmlType::kQ4_1:
      return elements / 32 * 20;
    case GgmlType::kQ8_0:
      return elements / 32 * 34;
    default:
      ADD_FAILURE() << "unexpected type " << GgmlTypeName(type);
      return 0;
  }
}

class SmolLm2FootprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = GgufFile::Open(DefaultModelPath());
    ASSERT_THAT(file, IsOk());
    file_ = *std::move(file);
    auto fp = ModelFootprint::FromGguf(*file_);
    ASSERT_THAT(fp, IsOk());
    fp_ = *std::move(fp);
  }
  std::unique_ptr<GgufFile> file_;
  ModelFootprint fp_;
};

TEST_F(SmolLm2FootprintTest, PartsAddUpToEveryTensorInTheFile) {
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : file_->tensors()) {
    uint64_t elements = 1;
    for (int64_t d : t.shape) elements *= static_cast<uint64_t>(d);
    expected += BytesOf(t.type, elements);
  }
  uint64_t layers = 0;
  for (uint64_t b : fp_.layer_bytes) layers += b;
  // The tied head reuses token_embd, so the file stores it once.
  EXPECT_EQ(layers + fp_.embedding_bytes + (fp_.head_bytes - fp_.embedding_bytes) + fp_.other_bytes,
            expected);
  EXPECT_EQ(fp_.total_bytes(), expected);
  // The data section holds exactly these bytes plus alignment padding.
  const uint64_t data_section = file_->size() - file_->header_bytes();
  EXPECT_LE(expected, data_section);
  EXPECT_GE(expected + file_->tensors().size() * file_->alignment(), data_section);
}

TEST_F(SmolLm2FootprintTest, ThirtyEqualLayersOfHandComputedSize) {
  // Per layer, Q4_1 (20 bytes per 32): q and o 576×576, k and v 576×192,
  // gate, up and down 576×1536; plus two F32 norms of 576.
  const uint64_t q4_1 = (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) / 32 * 20;
  const uint64_t norms = 2 * 576 * 4;
  ASSERT_EQ(fp_.layer_bytes.size(), 30u);
  for (uint64_t b : fp_.layer_bytes) EXPECT_EQ(b, q4_1 + norms);
  EXPECT_EQ(q4_1 + norms, 2216448u);
  EXPECT_EQ(fp_.weight_type, "Q4_1");
}

TEST_F(SmolLm2FootprintTest, TiedHeadIncludesTheEmbedding) {
  const uint64_t embd = 49152ull * 576 / 32 * 34;  // Q8_0
  EXPECT_EQ(fp_.embedding_bytes, embd);
  EXPECT_EQ(fp_.tied_embedding_bytes, embd);
  EXPECT_EQ(fp_.head_bytes, embd + 576 * 4);  // + output_norm (F32)
  EXPECT_EQ(fp_.other_bytes, 0u);
  const uint64_t per_layer = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576;
  EXPECT_EQ(fp_.parameter_count, 30 * per_layer + 49152ull * 576 + 576);
  EXPECT_EQ(fp_.parameter_count, 134515008u);
}

TEST_F(SmolLm2FootprintTest, DecodeCostsWeighLayersAndTheQ8HeadByType) {
  // A layer: 2,211,840 B of Q4_1 matrices at 1 per byte, times the 1.25
  // layer overhead, plus 4,608 B of F32 norms at 1 per byte.
  const double layer = (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) / 32 * 20 * 1.25 + 4608;
  EXPECT_DOUBLE_EQ(layer, 2769408.0);
  ASSERT_EQ(fp_.layer_cost.size(), 30u);
  for (double c : fp_.layer_cost) EXPECT_DOUBLE_EQ(c, layer);
  // The tied head: 30,081,024 B of Q8_0 at 0.55 per byte (no layer
  // overhead) plus the 2,304 B output norm. About 6 layers' time, though
  // it stores as much as 13.6 layers.
  const double head = 49152.0 * 576 / 32 * 34 * 0.55 + 576 * 4;
  EXPECT_DOUBLE_EQ(fp_.head_cost, head);
  EXPECT_LT(fp_.head_cost / layer, 6.0);
  EXPECT_GT(static_cast<double>(fp_.head_bytes) / 2216448, 13.5);
  EXPECT_EQ(fp_.other_cost, 0.0);
}

TEST(DecodeCostPerByteTest, OrdersFormatsAsTheKernelsRunThem) {
  // Q8_0 runs the same int8 dot products as Q4_1 over 1.7x the bytes per
  // weight, so a byte of it is cheaper.
  EXPECT_EQ(DecodeCostPerByte(GgmlType::kQ4_1, true), 1.0);
  EXPECT_LT(DecodeCostPerByte(GgmlType::kQ8_0, true), 1.0);
  EXPECT_GT(DecodeCostPerByte(GgmlType::kQ8_0, true), 0.5);
  // Q4_0, Q5_0 and Q5_1 run Q4_1's kernel shapes: within 2x of it.
  for (GgmlType simd : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    EXPECT_GT(DecodeCostPerByte(simd, true), 0.5) << GgmlTypeName(simd);
    EXPECT_LT(DecodeCostPerByte(simd, true), 2.0) << GgmlTypeName(simd);
  }
  // The K-quants unpack more per weight (scales per 16 or 32 values): no
  // cheaper per byte than Q4_1 (to within Q6_K's measured 0.92-1.06), and
  // cheaper the more bits they store.
  for (GgmlType k : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    EXPECT_GE(DecodeCostPerByte(k, true), 0.9) << GgmlTypeName(k);
    EXPECT_LT(DecodeCostPerByte(k, true), 4.0) << GgmlTypeName(k);
  }
  EXPECT_GT(DecodeCostPerByte(GgmlType::kQ2_K, true), DecodeCostPerByte(GgmlType::kQ4_K, true));
  EXPECT_GT(DecodeCostPerByte(GgmlType::kQ4_K, true), DecodeCostPerByte(GgmlType::kQ6_K, true));
  // Norms and biases: one elementwise pass, a byte each, whatever the type.
  EXPECT_EQ(DecodeCostPerByte(GgmlType::kF32, false), 1.0);
  EXPECT_EQ(DecodeCostPerByte(GgmlType::kQ6_K, false), 1.0);
}

// A two-layer Llama header with F32 tensors named by the caller.
std::string TinyModel(const std::vector<std::string>& layer_tensor_names, bool with_output) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("llama.block_count", 2);
  w.SetUint32("llama.context_length", 128);
  w.SetUint32("llama.embedding_length", 32);
  w.SetUint32("llama.feed_forward_length", 64);
  w.SetUint32("llama.attention.head_count", 4);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    EXPECT_THAT(w.AddTensor(name, shape, GgmlType::kF32, EncodeF32(std::vector<float>(n, 1.0f))),
                IsOk());
  };
  add("token_embd.weight", {32, 10});
  add("output_norm.weight", {32});
  if (with_output) add("output.weight", {32, 10});
  add("rope_freqs.weight", {4});
  for (const std::string& name : layer_tensor_names) add(name, {32, 32});
  return w.Serialize();
}

TEST(ModelFootprintTest, SortsTensorsIntoLayersEndsAndOthers) {
  auto file = GgufFile::FromBuffer(
      "tiny.gguf",
      TinyModel({"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.1.ffn_up.weight"}, true));
  ASSERT_THAT(file, IsOk());
  ASSERT_OK_AND_ASSIGN(ModelFootprint fp, ModelFootprint::FromGguf(**file));
  EXPECT_EQ(fp.layer_bytes, (std::vector<uint64_t>{32 * 32 * 4, 2 * 32 * 32 * 4}));
  EXPECT_EQ(fp.embedding_bytes, 320u * 4);
  EXPECT_EQ(fp.head_bytes, (32u + 320u) * 4);  // untied: output_norm + output
  EXPECT_EQ(fp.tied_embedding_bytes, 0u);
  EXPECT_EQ(fp.other_bytes, 4u * 4);
  EXPECT_EQ(fp.parameter_count, 320u + 32 + 320 + 4 + 3 * 1024);
  EXPECT_EQ(fp.total_bytes(), fp.parameter_count * 4);
  EXPECT_EQ(fp.weight_type, "F32");
  // F32 matrices cost 0.7 per byte (x 1.25 in a layer), the 1-D ones 1.
  EXPECT_DOUBLE_EQ(fp.layer_cost[0], 32 * 32 * 4 * 0.7 * 1.25);
  EXPECT_DOUBLE_EQ(fp.layer_cost[1], 2 * 32 * 32 * 4 * 0.7 * 1.25);
  EXPECT_DOUBLE_EQ(fp.head_cost, 32 * 4 + 320 * 4 * 0.7);
  EXPECT_DOUBLE_EQ(fp.other_cost, 4 * 4);
}

TEST(ModelFootprintTest, RejectsTensorWithLayerIndexOutOfRange) {
  auto file = GgufFile::FromBuffer(
      "tiny.gguf",
      TinyModel({"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.7.attn_q.weight"}, false));
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT(ModelFootprint::FromGguf(**file),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("tiny.gguf"), HasSubstr("blk.7.attn_q.weight"))));
}

TEST(ModelFootprintTest, RejectsTensorWithMalformedLayerIndex) {
  auto file = GgufFile::FromBuffer(
      "tiny.gguf",
      TinyModel({"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.x1.attn_q.weight"}, false));
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT(ModelFootprint::FromGguf(**file),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blk.x1.attn_q.weight")));
}

TEST(ModelFootprintTest, RejectsLayerWithNoTensors) {
  auto file = GgufFile::FromBuffer("tiny.gguf", TinyModel({"blk.0.attn_q.weight"}, false));
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT(ModelFootprint::FromGguf(**file),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer 1")));
}

}  // namespace
}  // namespace tessera
