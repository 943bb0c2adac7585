// The one door to a forward pass (step_runner_factory.h) and the one step
// check (step_validation.h): device strings, the refusals a machine or build
// without CUDA gives, and that runners made by the factory compute what the
// directly built ones do, bit for bit: a two-stage CPU pipeline against the
// whole model on one ModelRunner, and a TP-3 group against a
// TensorParallelRunner made by hand.
#include "engine/step_runner_factory.h"

#include <sys/stat.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/step_validation.h"
#include "engine/tensor_parallel_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

TEST(DeviceTest, ParsesCpuCudaCudaNAndCudaLists) {
  ASSERT_OK_AND_ASSIGN(Device cpu, ParseDevice("cpu"));
  EXPECT_EQ(cpu.kind, Device::Kind::kCpu);
  EXPECT_EQ(cpu.ToString(), "cpu");
  ASSERT_OK_AND_ASSIGN(Device cuda, ParseDevice("cuda"));
  EXPECT_EQ(cuda.ToString(), "cuda:0");
  ASSERT_OK_AND_ASSIGN(Device three, ParseDevice("cuda:3"));
  EXPECT_THAT(three.ordinals, ::testing::ElementsAre(3));
  ASSERT_OK_AND_ASSIGN(Device list, ParseDevice("cuda:2,0,5"));
  EXPECT_THAT(list.ordinals, ::testing::ElementsAre(2, 0, 5));
  EXPECT_EQ(list.ToString(), "cuda:2,0,5");
  for (const char* bad : {"gpu", "", "cuda:", "cuda:-1", "cuda:x", "CPU", "cuda:1:2", "cuda:0,",
                          "cuda:,1", "cuda:0,,1", "cuda:0;1", "cuda:0,x"}) {
    absl::StatusOr<Device> d = ParseDevice(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(d.status().message(), HasSubstr("--device")) << bad;
  }
  absl::StatusOr<Device> twice = ParseDevice("cuda:1,0,1");
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("CUDA device 1 is listed twice"));
}

// --device and --tp agree or are refused by name: a list sets the degree,
// one ordinal with --tp T spans T devices, the CPU keeps --tp.
TEST(DeviceTest, TensorParallelDegreeComesFromTheListOrSpansDevices) {
  Device cpu;
  int tp = 3;
  ASSERT_THAT(ResolveTensorParallel(&cpu, &tp), IsOk());
  EXPECT_EQ(tp, 3);
  EXPECT_TRUE(cpu.ordinals.empty());

  Device two{Device::Kind::kCuda, {2}};
  tp = 3;
  ASSERT_THAT(ResolveTensorParallel(&two, &tp), IsOk());
  EXPECT_THAT(two.ordinals, ::testing::ElementsAre(2, 3, 4));
  EXPECT_EQ(tp, 3);

  Device list{Device::Kind::kCuda, {1, 0}};
  tp = 1;
  ASSERT_THAT(ResolveTensorParallel(&list, &tp), IsOk());
  EXPECT_EQ(tp, 2);
  EXPECT_THAT(list.ordinals, ::testing::ElementsAre(1, 0));
  tp = 2;
  ASSERT_THAT(ResolveTensorParallel(&list, &tp), IsOk());
  EXPECT_EQ(tp, 2);

  tp = 4;
  const absl::Status mismatch = ResolveTensorParallel(&list, &tp);
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("--device cuda:1,0 lists 2 GPUs but --tp is 4"));
  tp = 0;
  EXPECT_EQ(ResolveTensorParallel(&cpu, &tp).code(), absl::StatusCode::kInvalidArgument);
}

// What --device cuda says where it cannot run: a build without the backend
// names the flag and how to get one; a machine without the device names it
// and what the driver said. /dev/nvidia0 tells, independently of the CUDA
// runtime, whether this machine has a GPU.
TEST(DeviceTest, CudaWithoutABackendOrADeviceIsRefusedByName) {
  EXPECT_THAT(CheckDevice(Device{}, 1), IsOk());
  EXPECT_EQ(CheckDevice(Device{}, 0).code(), absl::StatusCode::kInvalidArgument);
  Device cuda{Device::Kind::kCuda, {0}};
  const absl::Status s = CheckDevice(cuda, 1);
  struct stat st;
  const bool gpu_here = stat("/dev/nvidia0", &st) == 0;
  if (!CudaBackendBuilt()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
    EXPECT_THAT(s.message(), HasSubstr("--device cuda:0: this build has no CUDA backend"));
  } else if (!gpu_here) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr("--device cuda:0"));
  } else {
    EXPECT_THAT(s, IsOk());
  }
  // Two GPUs: the backend, then NCCL, then the devices themselves.
  const absl::Status tp = CheckDevice(cuda, 2);
  if (!CudaBackendBuilt()) {
    EXPECT_EQ(tp.code(), absl::StatusCode::kUnimplemented) << tp;
    EXPECT_THAT(tp.message(), HasSubstr("--device cuda:0,1: this build has no CUDA backend"));
  } else if (!NcclBackendBuilt()) {
    EXPECT_EQ(tp.code(), absl::StatusCode::kUnimplemented) << tp;
    EXPECT_THAT(tp.message(), HasSubstr("needs NCCL"));
  } else if (!gpu_here) {
    EXPECT_EQ(tp.code(), absl::StatusCode::kFailedPrecondition) << tp;
    EXPECT_THAT(tp.message(), HasSubstr("--device cuda:0"));
  } else if (stat("/dev/nvidia1", &st) != 0) {
    EXPECT_EQ(tp.code(), absl::StatusCode::kFailedPrecondition) << tp;
    EXPECT_THAT(tp.message(), HasSubstr("--device cuda:1"));
  } else {
    EXPECT_THAT(tp, IsOk());
  }
  const absl::Status contradicting = CheckDevice(Device{Device::Kind::kCuda, {0, 1}}, 3);
  EXPECT_EQ(contradicting.code(), absl::StatusCode::kInvalidArgument) << contradicting;
}

std::vector<SequenceStep> PromptSteps(int64_t vocab, int prompt, int decodes) {
  std::mt19937_64 rng(5);
  std::vector<SequenceStep> steps;
  int pos = 0;
  for (int i = 0; i <= decodes; ++i) {
    SequenceStep s;
    s.seq_id = 1;
    s.start_pos = pos;
    s.num_tokens = i == 0 ? prompt : 1;
    for (int t = 0; t < s.num_tokens; ++t) s.tokens.push_back(static_cast<int32_t>(rng() % vocab));
    s.block_table = {0, 1, 2, 3};
    s.logits = i == 0 ? LogitsMode::kAll : LogitsMode::kLast;
    pos += s.num_tokens;
    steps.push_back(s);
  }
  return steps;
}

TEST(StepRunnerFactoryTest, TwoCpuStagesGiveTheWholeModelsLogitsBitwise) {
  ASSERT_OK_AND_ASSIGN(auto whole, EngineHarness::Open(DefaultModelPath(), 2, 4));
  const ModelConfig& cfg = whole->config;
  RunnerOptions ro;
  ro.kv_blocks = 4;
  ro.threads = 2;
  const int k = cfg.n_layer / 2;
  ASSERT_OK_AND_ASSIGN(auto first, CreateStepRunner(*whole->file, cfg, LayerRange{0, k}, ro));
  ASSERT_OK_AND_ASSIGN(auto second,
                       CreateStepRunner(*whole->file, cfg, LayerRange{k, cfg.n_layer}, ro));
  EXPECT_EQ(first->device(), "cpu");
  EXPECT_EQ(first->range().end, k);
  EXPECT_GT(first->weight_bytes(), 0u);
  EXPECT_GT(second->kv_bytes(), 0u);
  for (const SequenceStep& s : PromptSteps(cfg.vocab_size, 21, 3)) {
    StepOutput a, h, b;
    ASSERT_THAT(whole->runner->Forward({s}, {}, &a), IsOk());
    ASSERT_THAT(first->Forward({s}, {}, &h), IsOk());
    EXPECT_EQ(h.logit_rows, 0);
    SequenceStep later = s;
    later.tokens.clear();
    ASSERT_THAT(second->Forward({later}, h.hidden, &b), IsOk());
    ASSERT_EQ(a.logits.size(), b.logits.size());
    EXPECT_EQ(0, std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)))
        << "step at position " << s.start_pos;
  }
}

TEST(StepRunnerFactoryTest, TpThreeIsTheTensorParallelGroupBitwise) {
  ASSERT_OK_AND_ASSIGN(auto file, GgufFile::Open(DefaultModelPath()));
  ASSERT_OK_AND_ASSIGN(ModelConfig cfg, ModelConfigFromGguf(*file));
  RunnerOptions ro;
  ro.tp = 3;  // SmolLM2 has 3 KV heads
  ro.kv_blocks = 4;
  ro.threads = 3;
  const LayerRange all{0, cfg.n_layer};
  ASSERT_OK_AND_ASSIGN(auto made, CreateStepRunner(*file, cfg, all, ro));
  EXPECT_EQ(made->device(), "cpu, tp 3");
  TensorParallelOptions tpo;
  tpo.tp = 3;
  tpo.kv_blocks = 4;
  tpo.threads_per_rank = 1;
  ASSERT_OK_AND_ASSIGN(auto direct, TensorParallelRunner::Create(*file, cfg, all, tpo));
  for (const SequenceStep& s : PromptSteps(cfg.vocab_size, 9, 2)) {
    StepOutput a, b;
    ASSERT_THAT(made->Forward({s}, {}, &a), IsOk());
    ASSERT_THAT(direct->Forward({s}, {}, &b), IsOk());
    ASSERT_EQ(a.logits.size(), b.logits.size());
    EXPECT_EQ(0, std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)));
  }
}

TEST(StepValidationTest, EveryBadFieldIsNamed) {
  StepShapeLimits limits;
  limits.context_length = 64;
  limits.vocab_size = 100;
  limits.n_embd = 8;
  limits.first_stage = true;
  limits.kv_blocks = 4;
  limits.block_size = 16;
  SequenceStep good;
  good.seq_id = 7;
  good.num_tokens = 2;
  good.tokens = {1, 2};
  good.block_table = {0};
  EXPECT_THAT(ValidateStep(limits, {good}, {}), IsOk());
  struct Case {
    SequenceStep s;
    std::string want;
  };
  std::vector<Case> cases;
  SequenceStep s = good;
  s.num_tokens = 0;
  cases.push_back({s, "sequence 7: num_tokens is 0"});
  s = good;
  s.start_pos = 63;
  cases.push_back({s, "positions 63..64 are outside the model context of 64"});
  s = good;
  s.tokens = {1, 100};
  cases.push_back({s, "token id 100 outside the vocabulary of 100"});
  s = good;
  s.tokens = {1};
  cases.push_back({s, "1 token ids for num_tokens 2"});
  s = good;
  s.start_pos = 15;
  cases.push_back({s, "block table has 1 blocks but position 16 needs 2"});
  s = good;
  s.block_table = {4};
  cases.push_back({s, "block table entry 0 is block 4, outside the pool of 4 blocks"});
  for (const Case& c : cases) {
    const absl::Status st = ValidateStep(limits, {c.s}, {});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_THAT(st.message(), HasSubstr(c.want));
  }
  limits.first_stage = false;
  SequenceStep later = good;
  later.tokens.clear();
  EXPECT_THAT(ValidateStep(limits, {later}, std::vector<float>(16)), IsOk());
  EXPECT_THAT(ValidateStep(limits, {later}, std::vector<float>(15)).message(),
              HasSubstr("hidden states hold 15 floats; 2 tokens x 8 dims expected"));
}

}  // namespace
}  // namespace tessera::testing
