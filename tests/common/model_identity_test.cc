#include "common/model_identity.h"

#include <unistd.h>

#include <bitset>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/gguf/gguf_writer.h"
#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

using ::tessera::testing::IsOk;
using ::tessera::testing::StatusIs;
using ::testing::_;
using ::testing::HasSubstr;

// The input of every known-answer vector: byte i = (i * 31 + 7) & 0xff.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + 7) & 0xff);
  return s;
}

uint64_t Hash(const std::string& s, uint64_t seed = 0) {
  return ContentHash64(s.data(), s.size(), seed);
}

// Output of tests/common/gen_hash_vectors.py, an independent Python
// transcription of the algorithm: {length, seed, expected}.
struct Vector {
  size_t n;
  uint64_t seed;
  uint64_t expected;
};
constexpr Vector kVectors[] = {
    {0, 0x0000000000000000ull, 0xffdd592adad552f9ull},
    {1, 0x0000000000000000ull, 0x07a26ec1b10ffc6dull},
    {3, 0x0000000000000000ull, 0x69c46cff2db51f1aull},
    {4, 0x0000000000000000ull, 0x2a45236c464edc71ull},
    {7, 0x0000000000000000ull, 0xf856ca10125153adull},
    {8, 0x0000000000000000ull, 0xb17fee5c4dc52b5bull},
    {31, 0x0000000000000000ull, 0x391e790fc05e3c75ull},
    {32, 0x0000000000000000ull, 0x00a54f2f6856b84bull},
    {33, 0x0000000000000000ull, 0xe0966912f1e7734bull},
    {63, 0x0000000000000000ull, 0x6ca062d98724c83dull},
    {64, 0x0000000000000000ull, 0x8d5c6d2be2c94785ull},
    {100, 0x0000000000000000ull, 0x41a29d451a9b1633ull},
    {1000, 0x0000000000000000ull, 0xa3c9553ce727bbdbull},
    {0, 0x0123456789abcdefull, 0x12179ba0fe959b5cull},
    {1, 0x0123456789abcdefull, 0xf10eafcf4133bf7full},
    {32, 0x0123456789abcdefull, 0x7bddb2e25e014114ull},
    {33, 0x0123456789abcdefull, 0xf860f7212d1ee04bull},
    {1000, 0x0123456789abcdefull, 0xed0e2977e8e5f4bcull},
};

TEST(ContentHashTest, MatchesPythonReferenceVectors) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(Hash(Pattern(v.n), v.seed), v.expected)
        << "n=" << v.n << " seed=" << IdentityHex(v.seed);
  }
}

TEST(ContentHashTest, MatchesPythonReferenceOnText) {
  EXPECT_EQ(Hash("a"), 0x4f54e95a21d4be00ull);
  EXPECT_EQ(Hash("token_embd.weight"), 0x2178ada1e8d6281dull);
  EXPECT_EQ(Hash("blk.5.attn_q.weight"), 0x95123b03226dccddull);
}

TEST(ContentHashTest, DoesNotDependOnAlignment) {
  std::string buf = "x" + Pattern(1000);
  EXPECT_EQ(ContentHash64(buf.data() + 1, 1000), 0xa3c9553ce727bbdbull);
}

// Every single-bit flip of the input should flip about half the output bits;
// a weak mix (a lane or the tail not reaching the high bits) shows up as a
// low average or as some flip that changes almost nothing.
TEST(ContentHashTest, SingleBitFlipsAvalanche) {
  for (size_t n : {5u, 24u, 64u, 77u}) {
    std::string base = Pattern(n);
    const uint64_t h0 = Hash(base);
    double total_bits = 0;
    int min_bits = 64;
    for (size_t bit = 0; bit < n * 8; ++bit) {
      std::string flipped = base;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      int changed = static_cast<int>(std::bitset<64>(h0 ^ Hash(flipped)).count());
      total_bits += changed;
      min_bits = std::min(min_bits, changed);
    }
    const double mean = total_bits / (n * 8);
    EXPECT_GT(mean, 28.0) << "n=" << n;
    EXPECT_LT(mean, 36.0) << "n=" << n;
    EXPECT_GE(min_bits, 12) << "n=" << n;
  }
}

TEST(ContentHashTest, SeedAndLengthMatter) {
  EXPECT_NE(Hash(Pattern(100), 0), Hash(Pattern(100), 1));
  // Trailing zero bytes must not collide with the shorter input.
  EXPECT_NE(Hash(std::string(32, '\0')), Hash(std::string(33, '\0')));
  EXPECT_NE(Hash(std::string(0, '\0')), Hash(std::string(1, '\0')));
}

TEST(IdentityHexTest, PadsToSixteenLowercaseDigits) {
  EXPECT_EQ(IdentityHex(0), "0000000000000000");
  EXPECT_EQ(IdentityHex(0xABCull), "0000000000000abc");
  EXPECT_EQ(IdentityHex(0xFEDCBA9876543210ull), "fedcba9876543210");
}

// A 3-layer model with two tensors per layer. `data_byte` fills every tensor,
// `name` goes into the metadata; `with_output` adds an untied output.weight.
std::unique_ptr<GgufFile> TinyModel(const std::string& name, char data_byte, bool with_output,
                                    bool with_rope_freqs = false) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", name);
  w.SetUint32("llama.block_count", 3);
  auto add = [&](const std::string& t, char extra) {
    std::string bytes(16, data_byte);
    bytes[0] = extra;  // every tensor distinct, so a swap would show
    EXPECT_THAT(w.AddTensor(t, {4}, GgmlType::kF32, bytes), IsOk());
  };
  add("token_embd.weight", 1);
  if (with_rope_freqs) add("rope_freqs.weight", 2);
  for (int i = 0; i < 3; ++i) {
    add("blk." + std::to_string(i) + ".attn_norm.weight", static_cast<char>(10 + i));
    add("blk." + std::to_string(i) + ".ffn_down.weight", static_cast<char>(20 + i));
  }
  add("output_norm.weight", 3);
  if (with_output) add("output.weight", 4);
  auto file = GgufFile::FromBuffer(name, w.Serialize());
  EXPECT_THAT(file, IsOk());
  return file.ok() ? std::move(file).value() : nullptr;
}

// The documented chaining, written out for an explicit list of tensor names
// (the test's own statement of which tensors a range holds).
uint64_t ExpectedIdentity(const GgufFile& f, const std::vector<std::string>& names) {
  uint64_t h = ContentHash64(f.data(), f.header_bytes());
  for (const std::string& name : names) {
    const GgufTensorInfo* t = f.FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) return 0;
    uint64_t d = ContentHash64(f.TensorData(*t), t->size_bytes);
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(d >> (8 * i));
    h = ContentHash64(name.data(), name.size(), h);
    h = ContentHash64(le, 8, h);
  }
  return h;
}

TEST(RangeIdentityTest, SelectsTheRangesTensorsInFileOrder) {
  auto tied = TinyModel("tiny", 0x55, /*with_output=*/false);
  ASSERT_NE(tied, nullptr);
  EXPECT_EQ(*RangeIdentity(*tied, 0, 1, 3),
            ExpectedIdentity(
                *tied, {"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_down.weight"}));
  EXPECT_EQ(*RangeIdentity(*tied, 1, 2, 3),
            ExpectedIdentity(*tied, {"blk.1.attn_norm.weight", "blk.1.ffn_down.weight"}));
  // Tied embeddings: the last stage needs token_embd.weight as its LM head.
  EXPECT_EQ(*RangeIdentity(*tied, 2, 3, 3),
            ExpectedIdentity(*tied, {"token_embd.weight", "blk.2.attn_norm.weight",
                                     "blk.2.ffn_down.weight", "output_norm.weight"}));
  EXPECT_EQ(*RangeIdentity(*tied, 0, 3, 3),
            ExpectedIdentity(
                *tied, {"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_down.weight",
                        "blk.1.attn_norm.weight", "blk.1.ffn_down.weight", "blk.2.attn_norm.weight",
                        "blk.2.ffn_down.weight", "output_norm.weight"}));
}

TEST(RangeIdentityTest, UntiedLastStageHashesOutputNotEmbeddings) {
  auto untied = TinyModel("tiny", 0x55, /*with_output=*/true, /*with_rope_freqs=*/true);
  ASSERT_NE(untied, nullptr);
  EXPECT_EQ(
      *RangeIdentity(*untied, 2, 3, 3),
      ExpectedIdentity(*untied, {"rope_freqs.weight", "blk.2.attn_norm.weight",
                                 "blk.2.ffn_down.weight", "output_norm.weight", "output.weight"}));
  EXPECT_EQ(*RangeIdentity(*untied, 1, 2, 3),
            ExpectedIdentity(
                *untied, {"rope_freqs.weight", "blk.1.attn_norm.weight", "blk.1.ffn_down.weight"}));
}

TEST(RangeIdentityTest, RejectsBadRanges) {
  auto f = TinyModel("tiny", 0x55, false);
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(RangeIdentity(*f, -1, 2, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[-1, 2)")));
  EXPECT_THAT(RangeIdentity(*f, 2, 2, 3), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(RangeIdentity(*f, 2, 1, 3), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(RangeIdentity(*f, 0, 4, 3), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(RangeIdentity(*f, 0, 0, 0), StatusIs(absl::StatusCode::kInvalidArgument, _));
  // A layer count that does not match the file.
  EXPECT_THAT(RangeIdentity(*f, 2, 5, 5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer 3")));
}

TEST(RangeIdentityTest, HeaderHashTellsFilesApart) {
  auto a = TinyModel("model-a", 0x55, false);
  auto b = TinyModel("model-b", 0x55, false);
  auto a_finetuned = TinyModel("model-a", 0x56, false);
  ASSERT_TRUE(a && b && a_finetuned);
  EXPECT_NE(GgufHeaderHash(*a), GgufHeaderHash(*b));
  // Same metadata and shapes, different weights: same header, different identity.
  EXPECT_EQ(GgufHeaderHash(*a), GgufHeaderHash(*a_finetuned));
  for (auto [begin, end] : {std::pair{0, 1}, {1, 2}, {2, 3}, {0, 3}}) {
    EXPECT_NE(*RangeIdentity(*a, begin, end, 3), *RangeIdentity(*a_finetuned, begin, end, 3))
        << begin << ".." << end;
  }
}

// The real model, copied with one byte flipped inside blk.5.attn_q.weight.
TEST(RangeIdentityTest, ByteFlipInLayerFiveOnlyChangesRangesHoldingIt) {
  const std::string model = ::tessera::testing::DefaultModelPath();
  ASSERT_TRUE(std::filesystem::exists(model)) << "no model at " << model;
  ASSERT_OK_AND_ASSIGN(auto original, GgufFile::Open(model));
  const GgufTensorInfo* q = original->FindTensor("blk.5.attn_q.weight");
  ASSERT_NE(q, nullptr);
  const uint64_t flip_at =
      static_cast<uint64_t>(original->TensorData(*q) - original->data()) + q->size_bytes / 2;

  const std::string copy =
      ::testing::TempDir() + "/identity_flip." + std::to_string(::getpid()) + ".gguf";
  std::filesystem::copy_file(model, copy, std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(flip_at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(flip_at);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }
  ASSERT_OK_AND_ASSIGN(auto modified, GgufFile::Open(copy));
  std::filesystem::remove(copy);

  EXPECT_EQ(GgufHeaderHash(*original), GgufHeaderHash(*modified));
  auto differs = [&](int begin, int end) {
    return *RangeIdentity(*original, begin, end, 30) != *RangeIdentity(*modified, begin, end, 30);
  };
  EXPECT_TRUE(differs(0, 10));
  EXPECT_TRUE(differs(5, 6));
  EXPECT_TRUE(differs(0, 30));
  EXPECT_FALSE(differs(6, 30));
  EXPECT_FALSE(differs(0, 5));
  // Ranges are distinct identities even on the same file.
  EXPECT_NE(*RangeIdentity(*original, 0, 5, 30), *RangeIdentity(*original, 0, 6, 30));
  std::printf("SmolLM2 identity [0,30): %s\n",
              IdentityHex(*RangeIdentity(*original, 0, 30, 30)).c_str());
}

TEST(RangeIdentityTest, RealModelHeaderDiffersFromTinyModel) {
  const std::string model = ::tessera::testing::DefaultModelPath();
  ASSERT_TRUE(std::filesystem::exists(model)) << "no model at " << model;
  ASSERT_OK_AND_ASSIGN(auto real, GgufFile::Open(model));
  auto tiny = TinyModel("tiny", 0x55, false);
  ASSERT_NE(tiny, nullptr);
  EXPECT_NE(GgufHeaderHash(*real), GgufHeaderHash(*tiny));
  EXPECT_EQ(GgufHeaderHash(*real), ContentHash64(real->data(), real->header_bytes()));
}

}  // namespace
}  // namespace tessera
