// The main() of every GoogleTest binary in tests/: GoogleTest plus one rule
// about skips, so that ctest never counts a skip as a pass.
//
// ctest registers each binary with SKIP_REGULAR_EXPRESSION "SKIPPED: " (see
// tessera_gtest in tests/CMakeLists.txt). When no case failed and at least
// one was skipped, this main prints one "SKIPPED: <suite.case>: <reason>"
// line per skipped case, so ctest reports the binary as skipped, with the
// reasons in its log. A skip with no reason is a failure: every skip must
// say why. Skipping for something the test command installs is a bug in
// the test, not a skip; tests fail instead.
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

class SkipReporter : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& test) override {
    const ::testing::TestResult& result = *test.result();
    if (!result.Skipped()) return;
    std::string reason;
    for (int i = 0; i < result.total_part_count(); ++i) {
      const ::testing::TestPartResult& part = result.GetTestPartResult(i);
      if (part.skipped()) reason += part.message();
    }
    skips_.push_back({std::string(test.test_suite_name()) + "." + test.name(), reason});
  }

  // Prints the SKIPPED lines; false if some skip gave no reason.
  bool Report() const {
    bool all_explained = true;
    for (const Skip& s : skips_) {
      if (s.reason.empty()) {
        std::printf("%s skipped without saying why: every GTEST_SKIP needs a reason\n",
                    s.name.c_str());
        all_explained = false;
      }
    }
    if (!all_explained) return false;
    for (const Skip& s : skips_) {
      std::string reason = s.reason;
      for (char& c : reason) {
        if (c == '\n') c = ' ';
      }
      std::printf("SKIPPED: %s: %s\n", s.name.c_str(), reason.c_str());
    }
    return true;
  }

 private:
  struct Skip {
    std::string name;
    std::string reason;
  };
  std::vector<Skip> skips_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  auto* reporter = new SkipReporter;  // owned by GoogleTest's listener list
  ::testing::UnitTest::GetInstance()->listeners().Append(reporter);
  const int rc = RUN_ALL_TESTS();
  if (rc != 0) return rc;  // failures speak for themselves; no SKIPPED line
  return reporter->Report() ? 0 : 1;
}
