// StepDeadlines against hand-computed deadlines.
#include "coordinator/step_deadline.h"

#include "gtest/gtest.h"

namespace tessera {
namespace {

TEST(StepDeadlinesTest, ColdUntilWarmThenScaledBySlowestPerTokenTime) {
  StepDeadlines d(absl::Seconds(1), 8, absl::Seconds(60));
  EXPECT_EQ(d.For(1), absl::Seconds(60));
  for (int i = 0; i < StepDeadlines::kWarmupSteps - 1; ++i) d.Observe(absl::Milliseconds(10), 1);
  EXPECT_EQ(d.For(1), absl::Seconds(60));  // 15 answered: still cold
  d.Observe(absl::Milliseconds(20), 4);     // 5 ms per token
  // Slowest per token: 10 ms (a decode step), so 8 x 10 ms x tokens, floor 1 s.
  EXPECT_EQ(d.For(1), absl::Seconds(1));
  EXPECT_EQ(d.For(100), absl::Seconds(8));
  EXPECT_EQ(d.For(512), absl::Milliseconds(40960));
}

TEST(StepDeadlinesTest, TheWindowForgetsOldSlowSteps) {
  StepDeadlines d(absl::Milliseconds(1), 2, absl::Seconds(60));
  d.Observe(absl::Seconds(1), 1);  // one slow step, then a window of fast ones
  for (int i = 0; i < StepDeadlines::kWindow - 1; ++i) d.Observe(absl::Milliseconds(2), 1);
  EXPECT_EQ(d.For(10), absl::Seconds(20));  // still in the window
  d.Observe(absl::Milliseconds(2), 1);      // pushes it out
  EXPECT_EQ(d.For(10), absl::Milliseconds(40));
}

TEST(StepDeadlinesTest, FactorZeroIsTheFloorAlone) {
  StepDeadlines d(absl::Milliseconds(300), 0);
  EXPECT_EQ(d.For(1), absl::Milliseconds(300));
  for (int i = 0; i < 100; ++i) d.Observe(absl::Seconds(2), 1);
  EXPECT_EQ(d.For(1000), absl::Milliseconds(300));
}

}  // namespace
}  // namespace tessera
