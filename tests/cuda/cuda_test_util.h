// A minimal test harness for the CUDA tests, which must also build and run on
// the bare GPU machine where there is no GoogleTest.
//
// A test program is a list of named cases run by RunCudaTests() (optionally
// preceded by host-only cases that run everywhere). Without a usable device
// it prints "SKIPPED: no CUDA device (<reason>)" and exits 0,
// so ctest passes but the line shows in the log; with one, every CHECK that
// fails prints its file, line and message, and the program exits 1 if any
// did. Helpers copy vectors to and from the device and measure errors.
//
// Thread-safety: single-threaded test programs only.
#ifndef TESSERA_TESTS_CUDA_CUDA_TEST_UTIL_H_
#define TESSERA_TESTS_CUDA_CUDA_TEST_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/stream.h"

namespace tessera::cuda_test {

// Failures so far in this program.
int& FailureCount();
void ReportFailure(const char* file, int line, const std::string& message);

#define CUDA_TEST_CHECK(cond, ...)                                                 \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      ::tessera::cuda_test::ReportFailure(__FILE__, __LINE__,                      \
                                          std::string(#cond) + ": " +              \
                                              ::tessera::cuda_test::Format(__VA_ARGS__)); \
    }                                                                              \
  } while (0)

// Checks a Status and returns from the enclosing void function when not OK.
#define CUDA_TEST_ASSERT_OK(expr)                                                           \
  do {                                                                                      \
    const ::absl::Status tessera_test_status_ = (expr);                                     \
    if (!tessera_test_status_.ok()) {                                                       \
      ::tessera::cuda_test::ReportFailure(__FILE__, __LINE__,                               \
                                          std::string(#expr) + " -> " +                     \
                                              tessera_test_status_.ToString());             \
      return;                                                                               \
    }                                                                                       \
  } while (0)

#define CUDA_TEST_ASSIGN_OR_FAIL_CONCAT_(a, b) a##b
#define CUDA_TEST_ASSIGN_OR_FAIL_NAME_(line) CUDA_TEST_ASSIGN_OR_FAIL_CONCAT_(tessera_test_or_, line)
#define CUDA_TEST_ASSIGN_OR_FAIL(lhs, expr) \
  CUDA_TEST_ASSIGN_OR_FAIL_IMPL_(CUDA_TEST_ASSIGN_OR_FAIL_NAME_(__LINE__), lhs, expr)
#define CUDA_TEST_ASSIGN_OR_FAIL_IMPL_(var, lhs, expr)                                  \
  auto var = (expr);                                                                     \
  if (!var.ok()) {                                                                       \
    ::tessera::cuda_test::ReportFailure(__FILE__, __LINE__,                             \
                                        std::string(#expr) + " -> " + var.status().ToString()); \
    return;                                                                              \
  }                                                                                      \
  lhs = std::move(var).value()

std::string Format(const char* fmt = "", ...) __attribute__((format(printf, 1, 2)));

struct TestCase {
  std::string name;
  std::function<void()> body;
};

// Probes the device, then runs every case (or prints SKIPPED). Returns the
// process exit code.
int RunCudaTests(const char* program, const std::vector<TestCase>& cases);
// As above, after running `host_cases` (CPU-only checks, such as that a
// generated model loads in the CPU engine) whether or not there is a device;
// if any of them fails the program fails instead of printing SKIPPED.
int RunCudaTests(const char* program, const std::vector<TestCase>& host_cases,
                 const std::vector<TestCase>& device_cases);

// Device copies of host vectors and back. Failures are reported and yield an
// empty buffer / vector.
template <typename T>
absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<T>& host);
absl::Status CopyToDevice(const void* host, size_t bytes, void* device);
template <typename T>
absl::StatusOr<std::vector<T>> ToHost(const kernels::cuda::DeviceBuffer& device, size_t count);

// ||a - b|| / ||b|| in double (b is the reference).
double RelativeError(const std::vector<float>& a, const std::vector<float>& b);
double RelativeError(const std::vector<float>& a, const std::vector<double>& b);
// max_i |a_i - b_i| / max(floor, |b_i|).
double MaxElementRelativeError(const std::vector<float>& a, const std::vector<float>& b,
                               double floor = 1.0);
// Count of indices where a and b differ bitwise.
int64_t BitwiseMismatches(const std::vector<float>& a, const std::vector<float>& b);

// Seed for a case: TESSERA_CUDA_TEST_SEED if set, else `fallback`; printed
// so a failure can be reproduced.
uint64_t CaseSeed(uint64_t fallback);

}  // namespace tessera::cuda_test

#endif  // TESSERA_TESTS_CUDA_CUDA_TEST_UTIL_H_
