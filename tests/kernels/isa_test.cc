#include "kernels/cpu/isa.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "gtest/gtest.h"

namespace tessera::kernels {
namespace {

TEST(IsaTest, SupportedIsasEndAtDetectedAndStartAtScalar) {
  const std::vector<Isa> isas = SupportedIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  EXPECT_EQ(isas.back(), DetectIsa());
  std::printf("detected ISA: %s\n", IsaName(DetectIsa()));
}

TEST(IsaTest, SetIsaForTestingRefusesWhatTheCpuLacks) {
  const Isa before = ActiveIsa();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const bool supported = static_cast<int>(isa) <= static_cast<int>(DetectIsa());
    const Isa active_before = ActiveIsa();
    EXPECT_EQ(SetIsaForTesting(isa), supported) << IsaName(isa);
    EXPECT_EQ(ActiveIsa(), supported ? isa : active_before) << IsaName(isa);
  }
  SetIsaForTesting(before);
}

TEST(IsaTest, NamesAreTheEnvVarSpellings) {
  EXPECT_STREQ(IsaName(Isa::kScalar), "scalar");
  EXPECT_STREQ(IsaName(Isa::kAvx2), "avx2");
  EXPECT_STREQ(IsaName(Isa::kAvx512), "avx512");
}

// Runs only in a child process started by EnvVarSelectsIsaAtStartup
// (disabled, so a plain run neither runs nor skips it).
TEST(IsaEnvChild, DISABLED_ActiveIsaMatchesExpectation) {
  const char* want = std::getenv("TESSERA_EXPECT_ISA");
  ASSERT_NE(want, nullptr) << "run by EnvVarSelectsIsaAtStartup, which sets TESSERA_EXPECT_ISA";
  EXPECT_STREQ(IsaName(ActiveIsa()), want);
}

int RunChild(const std::string& env_isa, const std::string& expect) {
  const std::string cmd = "TESSERA_ISA=" + env_isa + " TESSERA_EXPECT_ISA=" + expect +
                          " /proc/" + std::to_string(getpid()) +
                          "/exe --gtest_also_run_disabled_tests --gtest_filter=IsaEnvChild.* > /dev/null 2>&1";
  return std::system(cmd.c_str());
}

TEST(IsaTest, EnvVarSelectsIsaAtStartup) {
  EXPECT_EQ(RunChild("scalar", "scalar"), 0);
  // Asking for more than the CPU has falls back to the best available.
  EXPECT_EQ(RunChild("avx512", IsaName(DetectIsa())), 0);
  EXPECT_EQ(RunChild("bogus", IsaName(DetectIsa())), 0);
  if (DetectIsa() != Isa::kScalar) {
    EXPECT_EQ(RunChild("avx2", "avx2"), 0);
  }
  // The harness itself must notice a wrong expectation.
  EXPECT_NE(RunChild("scalar", "avx2"), 0);
}

}  // namespace
}  // namespace tessera::kernels
