// GoogleTest matchers for absl::Status and absl::StatusOr<T>.
//
//   EXPECT_THAT(Open(path), IsOk());
//   EXPECT_THAT(Open(bad), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("blk.0")));
//
// Tests check the exact code, never just "not OK".
#ifndef TESSERA_TESTING_STATUS_MATCHERS_H_
#define TESSERA_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace tessera::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::tessera::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::tessera::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  if (s.code() != code) return false;
  return ::testing::Matches(message_matcher)(std::string(s.message()));
}

// ASSERT_OK_AND_ASSIGN(auto x, StatusOrExpr()) for tests.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  TESSERA_ASSERT_OK_AND_ASSIGN_IMPL_(   \
      TESSERA_TEST_CONCAT_(tessera_test_statusor_, __LINE__), lhs, expr)
#define TESSERA_TEST_CONCAT_INNER_(a, b) a##b
#define TESSERA_TEST_CONCAT_(a, b) TESSERA_TEST_CONCAT_INNER_(a, b)
#define TESSERA_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                       \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString();   \
  lhs = std::move(statusor).value()

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_STATUS_MATCHERS_H_
