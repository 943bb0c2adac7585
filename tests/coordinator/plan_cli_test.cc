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

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

std::string DefaultModelPath() {
  if (const char* env = std::getenv("TESSERA_MODEL"); env != nullptr && *env != '\0') return env;
  return std::string(TESSERA_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Result RunTessera(const std::vector<std::string>& args) {
  std::string cmd = TESSERA_BINARY;
  for (const std::string& a : args) cmd += " " + ShellQuote(a);
  const std::string out = ::testing::TempDir() + "/plan_out.txt";
  const std::string err = ::testing::TempDir() + "/plan_err.txt";
  cmd += " >" + out + " 2>" + err;
  Result r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

TEST(PlanCliTest, SplitsSmolLm2FifteenAndFifteenOverTwoEqualWorkers) {
  const Result r = RunTessera({"plan", "--model", DefaultModelPath(), "--workers", "1GiB,1GiB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two stage rows: layers 0-14 with the embedding, 15-29 with the head.
  EXPECT_THAT(r.out, ContainsRegex("\n0 +w0 +1.00 GiB +0-14 \\+embd "));
  EXPECT_THAT(r.out, ContainsRegex("\n1 +w1 +1.00 GiB +15-29 \\+head "));
  EXPECT_THAT(r.out, Not(ContainsRegex("\n2 +w")));
  // 15 layers × 2 × 3 KV heads × 64 × 4 B = 23040 B = 22.50 KiB per token.
  EXPECT_THAT(r.out, HasSubstr("22.50 KiB"));
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
