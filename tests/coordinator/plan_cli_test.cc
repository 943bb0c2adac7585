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

TEST(PlanCliTest, SplitsSmolLm2BalancingEstimatedDecodeTime) {
  const Result r = RunTessera({"plan", "--model", DefaultModelPath(), "--workers", "1GiB,1GiB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // In time a layer is 2,211,840 B of Q4_1 × 1.25 + 4,608 B of norms =
  // 2,769,408; the tied Q8_0 head (read whole per token) is 30,081,024 ×
  // 0.55 + 2,304 = 16,546,867, 5.97 layers; the embedding (one row read) is
  // free. 18 against 12 + 5.97 layers is the closest; byte balance (the head
  // as 13.6 layers) would have given 22 against 8.
  // Stage 0 stores 18 × 2,216,448 + 30,081,024 B = 66.74 MiB.
  EXPECT_THAT(r.out, ContainsRegex("\n0 +w0 +1.00 GiB +0-17 \\+embd +66.74 MiB "));
  EXPECT_THAT(r.out, ContainsRegex("\n1 +w1 +1.00 GiB +18-29 \\+head +54.05 MiB "));
  EXPECT_THAT(r.out, Not(ContainsRegex("\n2 +w")));
  // Time shares 18 / 35.975 = 50.0% and 17.975 / 35.975 = 50.0%.
  EXPECT_THAT(r.out, ContainsRegex("66.74 MiB .* 50.0% "));
  EXPECT_THAT(r.out, ContainsRegex("54.05 MiB .* 50.0% "));
  EXPECT_THAT(r.out, HasSubstr("the largest is 1.00x the mean"));
  // 18 layers × 2 × 3 KV heads × 64 × 4 B = 27648 B = 27.00 KiB per token.
  EXPECT_THAT(r.out, HasSubstr("27.00 KiB"));
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
