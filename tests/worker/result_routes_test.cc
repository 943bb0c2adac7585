// The last stage's Results routes: results reach the open session only, a
// reconnecting coordinator takes the session over, and a closed or broken
// route refuses (so the stage answers the step with an error instead).
#include "worker/result_routes.h"

#include <vector>

#include "gtest/gtest.h"

namespace tessera {
namespace {

tessera::v1::StepResult Result(uint64_t step) {
  tessera::v1::StepResult r;
  r.set_step_id(step);
  return r;
}

TEST(ResultRoutesTest, DeliversToTheOpenSessionOnly) {
  ResultRoutes routes;
  EXPECT_FALSE(routes.Deliver(7, Result(1))) << "nothing is open";
  std::vector<uint64_t> got;
  auto route = routes.Open(7, [&](const tessera::v1::StepResult& r) {
    got.push_back(r.step_id());
    return true;
  });
  EXPECT_TRUE(routes.Deliver(7, Result(1)));
  EXPECT_FALSE(routes.Deliver(8, Result(2))) << "another session";
  EXPECT_TRUE(routes.Deliver(7, Result(3)));
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 3}));
  route.reset();
  EXPECT_FALSE(routes.Deliver(7, Result(4))) << "closed";
  EXPECT_EQ(got.size(), 2u);
}

TEST(ResultRoutesTest, AReopenedSessionTakesOverAndTheOldRouteClosesNothing) {
  ResultRoutes routes;
  int old_writes = 0, new_writes = 0;
  auto old_route = routes.Open(5, [&](const tessera::v1::StepResult&) { return ++old_writes > 0; });
  auto new_route = routes.Open(5, [&](const tessera::v1::StepResult&) { return ++new_writes > 0; });
  EXPECT_TRUE(routes.Deliver(5, Result(1)));
  old_route.reset();  // must not close the session the new route now holds
  EXPECT_TRUE(routes.Deliver(5, Result(2)));
  EXPECT_EQ(old_writes, 0);
  EXPECT_EQ(new_writes, 2);
}

TEST(ResultRoutesTest, AFailedWriteIsReported) {
  ResultRoutes routes;
  auto route = routes.Open(9, [](const tessera::v1::StepResult&) { return false; });
  EXPECT_FALSE(routes.Deliver(9, Result(1)));
}

}  // namespace
}  // namespace tessera
