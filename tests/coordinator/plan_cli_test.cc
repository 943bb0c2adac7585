// `tessera plan` as a real process on the SmolLM2 header: the table on
// stdout, and a clear refusal with exit code 1 when the model cannot fit.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/cli_runner.h"
#include "tests/engine/test_paths.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

using ::tessera::testing::DefaultModelPath;

using Result = ::tessera::testing::CliResult;

Result RunTessera(const std::vector<std::string>& args) {
  return ::tessera::testing::RunCli(TESSERA_BINARY, args);
}

TEST(PlanCliTest, SplitsSmolLm2BalancingWhatATokenReads) {
  const Result r = RunTessera({"plan", "--model", DefaultModelPath(), "--workers", "1GiB,1GiB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A layer is 2,216,448 B; the tied head (28.7 MiB, read whole per token)
  // is worth 13.6 layers on the last stage, the embedding (one row read) is
  // free on the first: 22 layers against 8 + 13.6.
  EXPECT_THAT(r.out, ContainsRegex("\n0 +w0 +1.00 GiB +0-21 \\+embd +75.19 MiB "));
  EXPECT_THAT(r.out, ContainsRegex("\n1 +w1 +1.00 GiB +22-29 \\+head +45.60 MiB "));
  EXPECT_THAT(r.out, Not(ContainsRegex("\n2 +w")));
  // 22 layers × 2 × 3 KV heads × 64 × 4 B = 33792 B = 33.00 KiB per token.
  EXPECT_THAT(r.out, HasSubstr("33.00 KiB"));
  EXPECT_THAT(r.out, HasSubstr("46080 B/token"));
  // Concurrency 1 at 4096 tokens: 256 blocks.
  EXPECT_THAT(r.out, HasSubstr("256 blocks x 16 tokens = 4096 tokens"));
  EXPECT_THAT(r.out, HasSubstr("fits 1 sequence of 4096 tokens"));
}

TEST(PlanCliTest, RefusesTinyWorkersNamingAQuantization) {
  const Result r = RunTessera({"plan", "--model", DefaultModelPath(), "--workers", "10MiB,10MiB"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, AllOf(HasSubstr("RESOURCE_EXHAUSTED"), HasSubstr("20.00 MiB in all"),
                           ContainsRegex("Q4_0|Q4_1|Q4_K|Q5_K|Q6_K|Q8_0|F16")));
}

TEST(PlanCliTest, RejectsUnparsableWorkerMemory) {
  const Result r = RunTessera({"plan", "--model", DefaultModelPath(), "--workers", "1GiB,lots"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'lots'"));
}

}  // namespace
}  // namespace tessera
