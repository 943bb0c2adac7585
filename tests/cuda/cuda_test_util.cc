#include "tests/cuda/cuda_test_util.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/stream.h"

namespace tessera::cuda_test {

int& FailureCount() {
  static int failures = 0;
  return failures;
}

void ReportFailure(const char* file, int line, const std::string& message) {
  ++FailureCount();
  std::fprintf(stderr, "FAILURE at %s:%d: %s\n", file, line, message.c_str());
}

std::string Format(const char* fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

namespace {

// Runs `cases` in order, printing RUN/OK/FAIL lines; `sync` also waits for
// the device after each case so that a kernel fault is charged to it.
void RunCases(const std::vector<TestCase>& cases, bool sync) {
  for (const TestCase& c : cases) {
    const int before = FailureCount();
    std::printf("[ RUN  ] %s\n", c.name.c_str());
    std::fflush(stdout);
    c.body();
    // A fault inside a kernel shows at the next synchronisation.
    if (sync) {
      const cudaError_t err = cudaDeviceSynchronize();
      if (err != cudaSuccess) {
        ReportFailure(__FILE__, __LINE__,
                      std::string("device fault after case: ") + cudaGetErrorString(err));
      }
    }
    std::printf("[ %s ] %s\n", FailureCount() == before ? " OK " : "FAIL", c.name.c_str());
    std::fflush(stdout);
  }
}

int Summary(const char* program, size_t cases) {
  std::printf("[%s] %zu cases, %d failed checks: %s\n", program, cases, FailureCount(),
              FailureCount() == 0 ? "PASSED" : "FAILED");
  return FailureCount() == 0 ? 0 : 1;
}

}  // namespace

int RunCudaTests(const char* program, const std::vector<TestCase>& cases) {
  return RunCudaTests(program, {}, cases);
}

int RunCudaTests(const char* program, const std::vector<TestCase>& host_cases,
                 const std::vector<TestCase>& device_cases) {
  if (!host_cases.empty()) {
    std::printf("[%s] host checks (no device needed)\n", program);
    RunCases(host_cases, /*sync=*/false);
    // A failed host check fails the program even where there is no device,
    // instead of hiding behind SKIPPED.
    if (FailureCount() != 0) return Summary(program, host_cases.size());
  }
  absl::StatusOr<kernels::cuda::DeviceInfo> device = kernels::cuda::ProbeDevice();
  if (!device.ok()) {
    std::printf("SKIPPED: %s\n", std::string(device.status().message()).c_str());
    std::fflush(stdout);
    return 0;
  }
  std::printf("[%s] device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", program, device->name.c_str(),
              device->sm_major, device->sm_minor, device->multiprocessors,
              device->total_memory / double(1 << 30));
  RunCases(device_cases, /*sync=*/true);
  return Summary(program, host_cases.size() + device_cases.size());
}

absl::Status CopyToDevice(const void* host, size_t bytes, void* device) {
  CUDA_RETURN_IF_ERROR(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<T>& host) {
  auto buf = kernels::cuda::DeviceBuffer::Allocate(host.size() * sizeof(T));
  if (!buf.ok()) return buf.status();
  if (!host.empty()) {
    absl::Status s = CopyToDevice(host.data(), host.size() * sizeof(T), buf->data());
    if (!s.ok()) return s;
  }
  return buf;
}

template <typename T>
absl::StatusOr<std::vector<T>> ToHost(const kernels::cuda::DeviceBuffer& device, size_t count) {
  std::vector<T> host(count);
  if (count == 0) return host;
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  CUDA_RETURN_IF_ERROR(
      cudaMemcpy(host.data(), device.data(), count * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

template absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<float>&);
template absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<int32_t>&);
template absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<uint16_t>&);
template absl::StatusOr<kernels::cuda::DeviceBuffer> ToDevice(const std::vector<uint8_t>&);
template absl::StatusOr<std::vector<float>> ToHost(const kernels::cuda::DeviceBuffer&, size_t);
template absl::StatusOr<std::vector<uint16_t>> ToHost(const kernels::cuda::DeviceBuffer&,
                                                      size_t);
template absl::StatusOr<std::vector<int32_t>> ToHost(const kernels::cuda::DeviceBuffer&, size_t);
template absl::StatusOr<std::vector<uint8_t>> ToHost(const kernels::cuda::DeviceBuffer&, size_t);

double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (std::isnan(num)) return INFINITY;
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

double RelativeError(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  if (std::isnan(num)) return INFINITY;
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

double MaxElementRelativeError(const std::vector<float>& a, const std::vector<float>& b,
                               double floor) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]) /
                     std::fmax(floor, std::fabs(static_cast<double>(b[i])));
    if (std::isnan(e)) return INFINITY;
    worst = std::fmax(worst, e);
  }
  return worst;
}

int64_t BitwiseMismatches(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

uint64_t CaseSeed(uint64_t fallback) {
  const char* env = std::getenv("TESSERA_CUDA_TEST_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) + fallback : fallback;
  return seed;
}

}  // namespace tessera::cuda_test
