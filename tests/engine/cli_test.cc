// `tessera run` as a real process: stdout carries exactly the generated text,
// statistics go to stderr, and bad input is a clear error with exit code 1.
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_file.h"
#include "common/tokenizer/tokenizer.h"
#include "engine/step_runner_factory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/cli_runner.h"
#include "tests/engine/dequantized_copy.h"
#include "tests/engine/test_paths.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

using Result = ::tessera::testing::CliResult;

Result RunTessera(const std::vector<std::string>& args) {
  return ::tessera::testing::RunCli(TESSERA_BINARY, args);
}

// On the F32 copy of the default model our greedy tokens equal llama.cpp's
// (fidelity_test), so the CLI must print exactly the text of llama.cpp's tokens.
TEST(CliTest, GreedyRunPrintsExactlyTheTextOfLlamaCppsTokens) {
  std::ifstream in(GoldenPath("smollm2_f32_logits.json"));
  const nlohmann::json golden = nlohmann::json::parse(in);
  const std::string f32_model = ::testing::TempDir() + "/cli-smollm2-f32.gguf";
  ASSERT_TRUE(WriteDequantizedCopy(DefaultModelPath(), f32_model).ok());
  auto file = GgufFile::Open(f32_model);
  ASSERT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  // The first golden case whose first 24 greedy tokens hold no end-of-generation token.
  constexpr int kTokens = 24;
  for (const auto& c : golden["cases"]) {
    auto greedy = c["greedy"].get<std::vector<int32_t>>();
    greedy.resize(kTokens);
    bool has_eog = false;
    for (int32_t id : greedy) has_eog |= (*tok)->IsEndOfGeneration(id);
    if (has_eog) continue;
    const Result r = RunTessera({"run", "--model", f32_model, "--prompt",
                                 c["text"].get<std::string>(), "--temperature", "0",
                                 "--max-tokens", absl::StrCat(kTokens), "--threads", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, (*tok)->Decode(greedy));
    EXPECT_THAT(r.err, HasSubstr("prompt tokens: "));
    EXPECT_THAT(r.err, HasSubstr("decode: "));
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("tok/s")));
    std::remove(f32_model.c_str());
    return;
  }
  FAIL() << "no golden case without an early end-of-generation token";
}

TEST(CliTest, ChatModeAnswersAndStopsAtEndOfTurn) {
  const Result r = RunTessera({"run", "--model", DefaultModelPath(), "--chat", "--prompt",
                               "What is 2+2?", "--temperature", "0", "--max-tokens", "48"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("4"));
  EXPECT_THAT(r.err, HasSubstr("finish: stop"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("<|im_end|>")));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("<|im_start|>")));
}

TEST(CliTest, SampledRunsWithTheSameSeedAreIdentical) {
  const std::vector<std::string> args = {"run", "--model", DefaultModelPath(), "--prompt",
                                         "Once upon a time", "--temperature", "0.9",
                                         "--seed", "7", "--max-tokens", "20"};
  const Result a = RunTessera(args);
  std::vector<std::string> two_threads = args;
  two_threads.insert(two_threads.end(), {"--threads", "2"});
  const Result b = RunTessera(two_threads);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 10u);
}

// A Hugging Face directory and the GGUF converted from it (tests/golden/arch)
// are the same model: `tessera run` must print the same text from either,
// and `tessera plan` must read the directory's header alone.
TEST(CliTest, RunsAndPlansHuggingFaceDirectoriesLikeTheirGguf) {
  for (const std::string name : {"qwen2", "llama3"}) {
    const std::vector<std::string> flags = {"--prompt", "etaoin shrdlu", "--temperature", "0.8",
                                            "--seed", "3", "--max-tokens", "12"};
    std::vector<std::string> gguf = {"run", "--model", GoldenPath("arch/" + name + ".gguf")};
    std::vector<std::string> hf = {"run", "--model", GoldenPath("arch/" + name + "_hf")};
    gguf.insert(gguf.end(), flags.begin(), flags.end());
    hf.insert(hf.end(), flags.begin(), flags.end());
    const Result a = RunTessera(gguf);
    const Result b = RunTessera(hf);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_FALSE(a.out.empty());
    EXPECT_EQ(a.out, b.out) << name;
  }
  const Result plan = RunTessera(
      {"plan", "--model", GoldenPath("arch/glm4_hf"), "--workers", "1GiB,1GiB", "--context", "64"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("glm4_hf"));
}

// generation_config.json's sampling values are the defaults of flags not
// given, and an explicit flag still wins. The random model is peaky: at
// Tessera's own defaults (temperature 0.8, top_k 40, min_p 0.05) it repeats
// one token, at temperature 3 without top_k/min_p it does not.
TEST(CliTest, GenerationConfigSuppliesDefaultsForFlagsNotGiven) {
  const std::string dir = ::testing::TempDir() + "/cli-qwen2-genconfig";
  ASSERT_EQ(std::system(("rm -rf '" + dir + "' && cp -r '" + GoldenPath("arch/qwen2_hf") + "' '" +
                         dir + "'")
                            .c_str()),
            0);
  {
    std::ofstream out(dir + "/generation_config.json");
    out << R"({"temperature": 3.0, "top_k": 0, "min_p": 0.0})";
  }
  auto run = [&](const std::string& model, std::vector<std::string> extra) {
    std::vector<std::string> args = {"run",  "--model",      model, "--prompt", "etaoin shrdlu",
                                     "--max-tokens", "12", "--seed", "9"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTessera(args);
  };
  const std::string gguf = GoldenPath("arch/qwen2.gguf");
  const Result defaulted = run(dir, {});
  const Result hot = run(gguf, {"--temperature", "3", "--top-k", "0", "--min-p", "0"});
  const Result tessera_defaults = run(gguf, {});
  const Result overridden = run(dir, {"--temperature", "0"});
  const Result greedy = run(gguf, {"--temperature", "0"});
  for (const Result* r : {&defaulted, &hot, &tessera_defaults, &overridden, &greedy}) {
    ASSERT_EQ(r->exit_code, 0) << r->err;
  }
  EXPECT_EQ(defaulted.out, hot.out);
  EXPECT_NE(defaulted.out, tessera_defaults.out);
  EXPECT_EQ(overridden.out, greedy.out);
  EXPECT_NE(overridden.out, defaulted.out);

  {
    std::ofstream out(dir + "/generation_config.json");
    out << R"({"top_p": 7})";
  }
  const Result bad = run(dir, {});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("generation_config.json"));
  EXPECT_THAT(bad.err, HasSubstr("top_p"));
}

TEST(CliTest, BadInputIsAClearError) {
  Result r = RunTessera({"run", "--model", "/nonexistent/model.gguf", "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/model.gguf"));
  EXPECT_TRUE(r.out.empty());

  r = RunTessera({"run", "--model", DefaultModelPath(), "--prompt", "hi", "--top-p", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("top_p"));

  r = RunTessera({"run", "--model", DefaultModelPath(), "--prompt", "hi", "--max-context", "64",
                  "--max-tokens", "100"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("exceeds the context limit of 64"));

  r = RunTessera({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command"));

  r = RunTessera({"run", "--model", DefaultModelPath(), "--prompt", "hi", "--device", "gpu"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--device gpu: must be cpu, cuda, cuda:N or cuda:N,M,..."));
}

// --device cuda where it cannot run says what is missing: the backend (a
// build without CUDA), the device (a CUDA build on a machine without a GPU;
// /dev/nvidia0 tells), or, with both, support for the default model's
// Q4_1 weights. Nothing is printed on stdout.
TEST(CliTest, CudaWithoutAGpuOrABackendSaysWhichIsMissing) {
  struct stat st;
  const bool gpu_here = stat("/dev/nvidia0", &st) == 0;
  const Result r =
      RunTessera({"run", "--model", DefaultModelPath(), "--prompt", "hi", "--device", "cuda"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty());
  if (CudaBackendBuilt() && gpu_here) {
    EXPECT_THAT(r.err, HasSubstr("the GPU takes F32, F16, BF16, Q8_0 and Q4_K weights"));
  } else if (CudaBackendBuilt()) {
    EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION: --device cuda:0"));
  } else {
    EXPECT_THAT(r.err, HasSubstr("UNIMPLEMENTED: --device cuda:0: this build has no CUDA backend"));
  }
}

}  // namespace
}  // namespace tessera::testing
