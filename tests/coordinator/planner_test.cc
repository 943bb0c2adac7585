// The planner on hand-built footprints whose right answers are worked out by
// hand in the comments, plus a brute-force check of the split's optimality.
#include "coordinator/planner.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using ::testing::Not;
using testing::StatusIs;

constexpr uint64_t kMB = 1000000;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1ull << 30;

// A small config: KV per token per layer = 2 × 2 heads × 16 dims × 4 B = 256 B.
ModelConfig SmallConfig(int n_layer) {
  ModelConfig c;
  c.architecture = "llama";
  c.name = "synthetic";
  c.n_layer = n_layer;
  c.n_embd = 64;
  c.n_ff = 128;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.head_dim = 16;
  c.vocab_size = 1000;
  return c;
}

ModelFootprint Synthetic(std::vector<uint64_t> layers, uint64_t embedding, uint64_t head,
                         uint64_t tied = 0) {
  ModelFootprint m;
  m.config = SmallConfig(static_cast<int>(layers.size()));
  m.layer_bytes = std::move(layers);
  m.embedding_bytes = embedding;
  m.head_bytes = head;
  m.tied_embedding_bytes = tied;
  m.parameter_count = m.total_bytes() / 4;  // as if F32
  m.weight_type = "F32";
  return m;
}

std::vector<WorkerCapacity> Workers(std::vector<uint64_t> memory, std::vector<double> bw = {}) {
  std::vector<WorkerCapacity> w;
  for (size_t i = 0; i < memory.size(); ++i) {
    w.push_back({"10.0.0." + std::to_string(i + 1) + ":7070", memory[i], bw.empty() ? 0 : bw[i]});
  }
  return w;
}

PlanOptions SmallOptions() {
  PlanOptions o;
  o.max_context = 32;
  o.max_seqs = 1;
  o.max_batch_tokens = 1;
  o.block_size = 16;
  return o;
}

std::vector<std::pair<int, int>> Ranges(const PipelinePlan& p) {
  std::vector<std::pair<int, int>> r;
  for (const StagePlan& s : p.stages) r.emplace_back(s.layer_begin, s.layer_end);
  return r;
}

TEST(PlannerTest, KvBytesPerTokenIsTwoTimesKvHeadsTimesHeadDimTimesDtype) {
  ModelConfig smol;  // SmolLM2-135M: 3 KV heads of 64
  smol.n_kv_head = 3;
  smol.head_dim = 64;
  EXPECT_EQ(KvBytesPerTokenPerLayer(smol, 4), 1536u);  // 2 × 3 × 64 × 4
  EXPECT_EQ(KvBytesPerTokenPerLayer(smol, 2), 768u);
  EXPECT_EQ(KvBytesPerTokenPerLayer(SmallConfig(1), 4), 256u);
}

TEST(PlannerTest, ActivationBytesFollowTheDocumentedFormula) {
  PlanOptions o = SmallOptions();
  o.max_batch_tokens = 8;
  // per token: 5·64 + 2·64 + 2·32 + 2·128 + max(64, 128) = 896 floats.
  // 8 tokens × 896 × 4 = 28672; attention probs 4 heads × 32 × 4 = 512.
  EXPECT_EQ(ActivationBytes(SmallConfig(4), o, false), 28672u + 512u);
  // Last stage adds logits: 8 × 1000 × 4 = 32000.
  EXPECT_EQ(ActivationBytes(SmallConfig(4), o, true), 28672u + 512u + 32000u);
}

TEST(PlannerTest, SplitsEqualLayersEvenlyOverEqualWorkers) {
  const ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  const auto workers = Workers({kGiB, kGiB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  // 2+2 gives 210 MB on each stage; 1+3 or 3+1 puts 310 MB on one.
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 2}, {2, 4}}));
  EXPECT_TRUE(p.stages[0].has_embedding);
  EXPECT_FALSE(p.stages[0].has_head);
  EXPECT_FALSE(p.stages[1].has_embedding);
  EXPECT_TRUE(p.stages[1].has_head);
  EXPECT_EQ(p.stages[0].weight_bytes, 210 * kMB);
  EXPECT_EQ(p.stages[1].weight_bytes, 210 * kMB);
  EXPECT_EQ(p.stages[0].kv_bytes_per_token, 2 * 256u);
  EXPECT_EQ(p.stages[0].seconds_per_token, 0.0);  // bandwidth unknown
  EXPECT_EQ(p.stages[1].worker, 1);
}

TEST(PlannerTest, FasterWorkerGetsMoreLayers) {
  const ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  const auto workers = Workers({kGiB, kGiB}, {3e9, 1e9});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  // Time counts the bytes a token reads: the embedding's one row is free.
  // 3+1: 300 MB / 3 GB/s = 0.1 s and 110 MB / 1 GB/s = 0.11 s (slowest 0.11);
  // 2+2: 0.0667 s and 0.21 s (slowest 0.21). 3+1 wins.
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 3}, {3, 4}}));
  EXPECT_DOUBLE_EQ(p.stages[0].seconds_per_token, 0.30 / 3);
  EXPECT_DOUBLE_EQ(p.stages[1].seconds_per_token, 0.11);
}

TEST(PlannerTest, MemoryLimitForcesAnUnbalancedSplit) {
  const ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  // 150 MB holds the embedding and one layer (110 MB + small KV and
  // activations) but not two (210 MB), so the balanced 2+2 is out.
  const auto workers = Workers({150 * kMB, kGiB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 1}, {1, 4}}));
  EXPECT_EQ(p.stages[0].weight_bytes, 110 * kMB);
  EXPECT_EQ(p.stages[1].weight_bytes, 310 * kMB);
}

TEST(PlannerTest, PutsLmHeadOnLastStage) {
  // An untied 200 MB head: 2+2 would be 210 MB and 400 MB; 3+1 is 310 and
  // 300, so layers move off the last stage.
  const ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 200 * kMB);
  const auto workers = Workers({kGiB, kGiB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 3}, {3, 4}}));
  EXPECT_TRUE(p.stages[1].has_head);
  EXPECT_EQ(p.stages[1].weight_bytes, 300 * kMB);
  // The last stage also holds the logits: 1 token × 1000 × 4 B more scratch.
  EXPECT_EQ(p.stages[1].activation_bytes - p.stages[0].activation_bytes, 4000u);
}

// The footprint's decode costs, not its bytes, decide the boundaries.
TEST(PlannerTest, CheapHeadGivesTheLastStageMoreLayersThanByteBalance) {
  // The same 200 MB head as above, but costing 50 MB-of-layer time (a
  // format cheaper per byte). By bytes 3+1 won (above); by time 2+2 is
  // 200 against 200 + 50, and 3+1 is 300 against 100 + 50.
  ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 200 * kMB);
  m.layer_cost = {1e8, 1e8, 1e8, 1e8};
  m.head_cost = 5e7;
  const auto workers = Workers({kGiB, kGiB}, {1e9, 1e9});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 2}, {2, 4}}));
  EXPECT_DOUBLE_EQ(p.stages[0].decode_cost, 2e8);
  EXPECT_DOUBLE_EQ(p.stages[1].decode_cost, 2.5e8);
  EXPECT_DOUBLE_EQ(p.stages[1].seconds_per_token, 0.25);  // 2.5e8 / 1e9
  // Memory still counts bytes: 2 layers and the whole head.
  EXPECT_EQ(p.stages[1].weight_bytes, 400 * kMB);
}

TEST(PlannerTest, TimeOnlyChoosesAmongSplitsThatFit) {
  // As above, but the last worker holds the head and one layer only
  // (300 MB + scratch), so the time-balanced 2+2 is out and 3+1 remains.
  ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 200 * kMB);
  m.layer_cost = {1e8, 1e8, 1e8, 1e8};
  m.head_cost = 5e7;
  const auto workers = Workers({kGiB, 350 * kMB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  EXPECT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 3}, {3, 4}}));
  EXPECT_DOUBLE_EQ(p.stages[1].decode_cost, 1.5e8);
}

TEST(PlannerTest, LastStageThatCannotHoldTheHeadIsRefused) {
  // Every layer fits the last worker, but the 200 MB head plus one layer
  // does not fit its 250 MB: the failure vLLM users meet at load time.
  const ModelFootprint m = Synthetic({100 * kMB, 100 * kMB}, 10 * kMB, 200 * kMB);
  const auto workers = Workers({kGiB, 250 * kMB});
  EXPECT_THAT(PlanPipeline(m, workers, SmallOptions()),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("10.0.0.2:7070"), HasSubstr("+head"))));
}

TEST(PlannerTest, SingleStageStoresTiedEmbeddingOnce) {
  const ModelFootprint m = Synthetic({100 * kMB, 100 * kMB}, 50 * kMB, 50 * kMB + 1000, 50 * kMB);
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, Workers({kGiB}), SmallOptions()));
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.stages[0].weight_bytes, 250 * kMB + 1000);
  EXPECT_TRUE(p.stages[0].has_embedding && p.stages[0].has_head);
}

TEST(PlannerTest, TiedHeadIsCountedAgainOnTheLastOfTwoStages) {
  const ModelFootprint m = Synthetic({100 * kMB, 100 * kMB}, 50 * kMB, 50 * kMB + 1000, 50 * kMB);
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, Workers({kGiB, kGiB}), SmallOptions()));
  EXPECT_EQ(p.stages[0].weight_bytes, 150 * kMB);
  EXPECT_EQ(p.stages[1].weight_bytes, 150 * kMB + 1000);
}

TEST(PlannerTest, KvBlocksAreWhatTheTightestStageHoldsCappedByConcurrency) {
  const ModelFootprint m = Synthetic({1000, 1000, 1000, 1000}, 0, 0);
  PlanOptions o = SmallOptions();  // 32-token context: 2 blocks per sequence
  o.max_seqs = 10;
  // One stage of 4 layers: KV 4 × 256 = 1024 B/token, 16384 B/block.
  // Activations (last stage): 1 × 896 × 4 + 4 × 32 × 4 + 1 × 1000 × 4 = 8096.
  const uint64_t memory = 4000 + 8096 + 5 * 16384 + 100;
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, Workers({memory}), o));
  EXPECT_EQ(p.stages[0].activation_bytes, 8096u);
  EXPECT_EQ(p.max_blocks_fit, 5);
  EXPECT_EQ(p.num_blocks, 5);  // min(5, 10 sequences × 2 blocks)
  EXPECT_EQ(p.kv_capacity_tokens(), 80);
  EXPECT_EQ(p.stages[0].kv_bytes, 5u * 16384);
  EXPECT_EQ(p.stages[0].free_bytes, 100u);

  o.max_seqs = 2;  // wants 4 blocks; one block's memory stays free
  ASSERT_OK_AND_ASSIGN(p, PlanPipeline(m, Workers({memory}), o));
  EXPECT_EQ(p.max_blocks_fit, 5);
  EXPECT_EQ(p.num_blocks, 4);
  EXPECT_EQ(p.stages[0].free_bytes, 16384u + 100);
}

TEST(PlannerTest, EveryStageGetsTheBlocksOfTheTightest) {
  const ModelFootprint m = Synthetic({1000, 1000}, 0, 0);
  PlanOptions o = SmallOptions();
  o.max_seqs = 1000;
  // Stage 0 (layer 0): 256 B/token, 4096 B/block; activations 3584 + 512.
  const uint64_t mem0 = 1000 + 4096 + 3 * 4096;  // 3 blocks
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, Workers({mem0, kGiB}), o));
  EXPECT_EQ(p.num_blocks, 3);
  EXPECT_EQ(p.stages[1].kv_bytes, 3u * 4096);
  EXPECT_EQ(p.stages[0].free_bytes, 0u);
}

TEST(PlannerTest, NotEvenOneSequenceIsResourceExhaustedWithNumbers) {
  const ModelFootprint m = Synthetic({1000, 1000, 1000, 1000}, 0, 0);
  PlanOptions o = SmallOptions();
  o.max_seqs = 3;
  const uint64_t memory = 4000 + 8096 + 16384;  // one block, a sequence needs two
  EXPECT_THAT(PlanPipeline(m, Workers({memory}), o),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("weights 3.91 KiB"),                          // 4000 B
                             HasSubstr("96.00 KiB for 3 sequence(s) of 32 tokens"),  // 1024×32×3
                             HasSubstr("27.81 KiB in all"),                          // 28480 B
                             HasSubstr("needs 43.81 KiB"),  // 4000+8096+2×16384
                             HasSubstr("10.0.0.1:7070"))));
}

// 4 layers of 1 Mi parameters stored as F32 (4 MiB each), over 2 workers:
// each stage holds 2 Mi parameters.
ModelFootprint FourMegaparameterLayers() {
  ModelFootprint m = Synthetic({4 * kMiB, 4 * kMiB, 4 * kMiB, 4 * kMiB}, 0, 0);
  m.layer_parameters = {kMiB, kMiB, kMiB, kMiB};
  m.parameter_count = 4 * kMiB;
  return m;
}

TEST(PlannerTest, NamesF16WhenHalfPrecisionWouldFit) {
  // F16 stage: 2 Mi × 2 B = 4 MiB, under 5 MiB; F32 stage: 8 MiB.
  EXPECT_THAT(
      PlanPipeline(FourMegaparameterLayers(), Workers({5 * kMiB, 5 * kMiB}), SmallOptions()),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("weights 16.00 MiB"), HasSubstr("10.00 MiB in all"),
                     HasSubstr("F16 (16 bits/weight, about 8.00 MiB of weights) would fit"))));
}

TEST(PlannerTest, NamesTheFirstQuantizationThatFits) {
  // 1.25 MiB per worker: Q5_K needs 2 Mi × 5.5 / 8 = 1.375 MiB per stage (no);
  // Q4_K needs 1.125 MiB (yes, with ~12 KiB of KV and activations).
  EXPECT_THAT(
      PlanPipeline(FourMegaparameterLayers(), Workers({1280 * 1024, 1280 * 1024}), SmallOptions()),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("Q4_K (4.5 bits/weight, about 2.25 MiB of weights) would fit"),
                     Not(HasSubstr("Q5_K (")))));
}

TEST(PlannerTest, SaysWhatEvenQ4_0WouldNeedWhenNothingFits) {
  EXPECT_THAT(PlanPipeline(FourMegaparameterLayers(), Workers({kMiB, kMiB}), SmallOptions()),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("even Q4_0 would need 2.25 MiB")));  // 4 Mi × 4.5 / 8
}

TEST(PlannerTest, RejectsBadInputs) {
  const ModelFootprint m = Synthetic({100, 100}, 0, 0);
  EXPECT_THAT(
      PlanPipeline(m, Workers({kGiB, kGiB, kGiB}), SmallOptions()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 workers but only 2 layers")));
  EXPECT_THAT(PlanPipeline(m, {}, SmallOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one worker")));
  PlanOptions o = SmallOptions();
  o.kv_dtype_bytes = 3;
  EXPECT_THAT(PlanPipeline(m, Workers({kGiB}), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kv_dtype_bytes")));
  o = SmallOptions();
  o.max_context = 0;
  EXPECT_THAT(PlanPipeline(m, Workers({kGiB}), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_context 0")));
  EXPECT_THAT(PlanPipeline(m, Workers({kGiB}, {-1.0}), SmallOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10.0.0.1:7070")));
}

TEST(PlannerTest, TensorParallelDegreeMustDivideKvHeadsAndFfn) {
  ModelConfig smol;  // SmolLM2-135M: 9 query heads, 3 KV heads, n_ff 1536
  smol.n_head = 9;
  smol.n_kv_head = 3;
  smol.n_ff = 1536;
  smol.vocab_size = 49152;
  EXPECT_EQ(TensorParallelRefusal(smol, 1), "");
  EXPECT_EQ(TensorParallelRefusal(smol, 3), "");
  EXPECT_THAT(TensorParallelRefusal(smol, 2),
              AllOf(HasSubstr("degree 2"), HasSubstr("3 KV heads")));
  EXPECT_THAT(TensorParallelRefusal(smol, 0), HasSubstr("at least 1"));
  smol.n_kv_head = 4;  // 4 KV heads but 1538 = 2 × 769 feed-forward rows
  smol.n_ff = 1538;
  EXPECT_EQ(TensorParallelRefusal(smol, 2), "");
  EXPECT_THAT(TensorParallelRefusal(smol, 4), HasSubstr("n_ff 1538"));
  // ceil(5 / 4) = 2 rows per rank: ranks 0-2 take 6 > 5 rows, rank 3 none.
  smol.n_ff = 1536;
  smol.vocab_size = 5;
  EXPECT_THAT(TensorParallelRefusal(smol, 4), HasSubstr("5-token vocabulary"));
}

TEST(PlannerTest, RefusesAWorkerWhoseTensorParallelDegreeDoesNotSplitTheModel) {
  // SmallConfig has 2 KV heads: tp 3 cannot split them.
  const ModelFootprint m = Synthetic({100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  auto workers = Workers({kGiB, kGiB});
  workers[1].tensor_parallel = 3;
  EXPECT_THAT(PlanPipeline(m, workers, SmallOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("10.0.0.2:7070"), HasSubstr("degree 3"),
                             HasSubstr("2 KV heads"))));
  workers[1].tensor_parallel = 2;
  EXPECT_THAT(PlanPipeline(m, workers, SmallOptions()), IsOk());
}

TEST(PlannerTest, TensorParallelWorkerCountsReplicatedNormsAndPerRankScratch) {
  // One worker, 4 layers of 1000 B, untied 500 B embedding and head.
  const ModelFootprint m = Synthetic({1000, 1000, 1000, 1000}, 500, 500);
  auto workers = Workers({kGiB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan one, PlanPipeline(m, workers, SmallOptions()));
  workers[0].tensor_parallel = 2;
  ASSERT_OK_AND_ASSIGN(PipelinePlan two, PlanPipeline(m, workers, SmallOptions()));
  EXPECT_EQ(one.stages[0].weight_bytes, 5000u);
  // The second rank's copies of the F32 norms: 2 per layer × 64 × 4 B × 4
  // layers = 2048 B, plus the 256 B output norm.
  EXPECT_EQ(two.stages[0].weight_bytes, 5000u + 2048u + 256u);
  // KV is split, not copied: the same bytes per token.
  EXPECT_EQ(two.stages[0].kv_bytes_per_token, one.stages[0].kv_bytes_per_token);
  EXPECT_EQ(two.stages[0].kv_bytes_per_token, 4u * 256u);
  // Each rank has a whole step's scratch.
  EXPECT_EQ(two.stages[0].activation_bytes,
            2 * ActivationBytes(m.config, SmallOptions(), /*last_stage=*/true));
}

// For random small models, the slowest stage of the plan equals the best any
// feasible split achieves, found by enumerating every split.
TEST(PlannerTest, SplitIsOptimalAgainstBruteForce) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint64_t> layer_size(1, 50);
  std::uniform_int_distribution<int> bw_choice(1, 4);
  int feasible = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int L = 7, W = 3;
    std::vector<uint64_t> layers;
    for (int i = 0; i < L; ++i) layers.push_back(layer_size(rng) * kMB);
    ModelFootprint m = Synthetic(layers, 30 * kMB, 60 * kMB);
    // Every other trial gives time costs unrelated to the bytes (memory
    // still counts bytes); the rest leave them empty, meaning cost = bytes.
    std::vector<double> cost(layers.begin(), layers.end());
    double head_cost = 60e6;
    if (trial % 2 == 1) {
      for (double& c : cost) c = static_cast<double>(layer_size(rng)) * 1e6;
      head_cost = static_cast<double>(layer_size(rng)) * 1e6;
      m.layer_cost = cost;
      m.head_cost = head_cost;
    }
    std::vector<double> bw;
    std::vector<uint64_t> mem;
    for (int j = 0; j < W; ++j) {
      bw.push_back(bw_choice(rng) * 1e9);
      mem.push_back((60 + 20 * bw_choice(rng)) * kMB);
    }
    const auto workers = Workers(mem, bw);
    const PlanOptions o = SmallOptions();
    // Brute force: boundaries 0 < a < b < L.
    double best = -1;
    for (int a = 1; a < L; ++a) {
      for (int b = a + 1; b < L; ++b) {
        const int cut[4] = {0, a, b, L};
        double slowest = 0;
        bool fits = true;
        for (int j = 0; j < W; ++j) {
          uint64_t w = 0;
          double time = 0;
          for (int l = cut[j]; l < cut[j + 1]; ++l) w += layers[l], time += cost[l];
          if (j == W - 1) w += 60 * kMB, time += head_cost;  // the head: read whole per token
          if (j == 0) w += 30 * kMB;  // the embedding: stored, one row read
          const uint64_t need = w + ActivationBytes(m.config, o, j == W - 1) +
                                2 * 16 * 256 * static_cast<uint64_t>(cut[j + 1] - cut[j]);
          fits &= need <= mem[j];
          slowest = std::max(slowest, time / bw[j]);
        }
        if (fits && (best < 0 || slowest < best)) best = slowest;
      }
    }
    auto p = PlanPipeline(m, workers, o);
    if (best < 0) {
      EXPECT_THAT(p, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("does not fit")));
      continue;
    }
    ASSERT_THAT(p, IsOk()) << "trial " << trial;
    ++feasible;
    double slowest = 0;
    for (const StagePlan& s : p->stages) slowest = std::max(slowest, s.seconds_per_token);
    EXPECT_NEAR(slowest, best, best * 1e-9) << "trial " << trial;
  }
  // Both outcomes must be exercised for the comparison to mean anything.
  EXPECT_GT(feasible, 50);
  EXPECT_LT(feasible, 200);
}

TEST(PlannerTest, FormatPlanShowsEveryStageAndWhatFits) {
  const ModelFootprint m =
      Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  PlanOptions o = SmallOptions();
  o.max_seqs = 4;
  const auto workers = Workers({kGiB, kGiB});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, o));
  const std::string table = FormatPlan(m, workers, o, p);
  EXPECT_THAT(table, HasSubstr("10.0.0.1:7070"));
  EXPECT_THAT(table, HasSubstr("0-1 +embd"));
  EXPECT_THAT(table, HasSubstr("2-3 +head"));
  EXPECT_THAT(table, HasSubstr("200.27 MiB"));  // 210 MB
  EXPECT_THAT(table, HasSubstr("8 blocks x 16 tokens = 128 tokens"));
  EXPECT_THAT(table, HasSubstr("fits 4 sequences of 32 tokens"));
  // Time (cost = bytes here) leaves out the embedding but not the head:
  // 200 and 210 MB, so 48.8% and 51.2%, the larger 210 / 205 of the mean.
  EXPECT_THAT(table, HasSubstr("time share"));
  EXPECT_THAT(table, HasSubstr("48.8%"));
  EXPECT_THAT(table, HasSubstr("51.2%"));
  EXPECT_THAT(table, HasSubstr("the largest is 1.02x the mean"));
}

TEST(PlannerTest, FormatPlanSharesAreOfSecondsWhenBandwidthsAreKnown) {
  ModelFootprint m = Synthetic({100 * kMB, 100 * kMB, 100 * kMB, 100 * kMB}, 10 * kMB, 10 * kMB);
  m.layer_cost = {1e8, 1e8, 1e8, 1e8};
  m.head_cost = 1e8;
  const auto workers = Workers({kGiB, kGiB}, {3e9, 1e9});
  ASSERT_OK_AND_ASSIGN(PipelinePlan p, PlanPipeline(m, workers, SmallOptions()));
  // 3+1: 3e8 / 3e9 = 0.1 s and 2e8 / 1e9 = 0.2 s (2+2: 0.067 and 0.3 s).
  ASSERT_EQ(Ranges(p), (std::vector<std::pair<int, int>>{{0, 3}, {3, 4}}));
  const std::string table = FormatPlan(m, workers, SmallOptions(), p);
  EXPECT_THAT(table, HasSubstr("33.3%"));  // 0.1 of 0.3 s, though 60% of the cost
  EXPECT_THAT(table, HasSubstr("66.7%"));
  EXPECT_THAT(table, HasSubstr("the largest is 1.33x the mean"));
  EXPECT_THAT(table, HasSubstr("about 200.00 ms per decoded token"));
}

TEST(ParseByteSizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseByteSize("24GiB"), 24ull << 30);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("1.5GB"), 1500000000u);
  EXPECT_EQ(*ParseByteSize("1000000"), 1000000u);
  EXPECT_EQ(*ParseByteSize("1.5 KiB"), 1536u);
  EXPECT_EQ(*ParseByteSize("2tb"), 2000000000000u);
  EXPECT_EQ(*ParseByteSize("3Gi"), 3ull << 30);
  EXPECT_EQ(*ParseByteSize("0.1KiB"), 102u);  // 102.4 rounds to 102
  EXPECT_EQ(*ParseByteSize("  7B "), 7u);
  EXPECT_EQ(*ParseByteSize("3k"), 3000u);
  EXPECT_EQ(*ParseByteSize("3Ki"), 3072u);
  EXPECT_EQ(*ParseByteSize("2MB"), 2000000u);
  EXPECT_EQ(*ParseByteSize("1TiB"), 1ull << 40);
}

TEST(ParseByteSizeTest, RejectsMalformedTextNamingIt) {
  for (const char* bad : {"", "GiB", "abc", "-1GiB", "1e9", "12XB", "1.2.3", "0.5B", "1.5",
                          "99999999999TiB", "123456789012345678901", "1i", "1iB", "1bb",
                          "1kk", "1KiBB", "1PiB", "1bk"}) {
    EXPECT_THAT(ParseByteSize(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr(std::string("'") + bad + "'")))
        << bad;
  }
}

}  // namespace
}  // namespace tessera
