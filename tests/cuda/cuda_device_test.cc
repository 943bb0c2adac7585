// What a GPU worker offers the planner (engine/cuda/cuda_device.h,
// DescribeDevice in engine/step_runner_factory.h): the device's memory from
// cudaMemGetInfo and its measured copy bandwidth, against the driver's own
// figures.
//   - ProbeCudaDevice(0): a name, 0 < free <= total, total equal to
//     cudaDeviceProp::totalGlobalMem, and a copy bandwidth above 100 GB/s
//     and below the theoretical peak (memory clock x bus width x 2) times 2
//     (a copy moves each byte twice); a missing ordinal is
//     FAILED_PRECONDITION naming it.
//   - DescribeDevice(cuda:0) puts those figures in HostDevices (type
//     "cuda"), and leaves a CPU description alone.
#include <cuda_runtime.h>

#include <string>

#include "engine/cuda/cuda_device.h"
#include "engine/step_runner_factory.h"
#include "tests/cuda/cuda_test_util.h"

namespace tessera::cuda_test {
namespace {

void ProbeReportsTheDevice() {
  CUDA_TEST_ASSIGN_OR_FAIL(CudaDeviceInfo info, ProbeCudaDevice(0));
  cudaDeviceProp prop;
  CUDA_TEST_CHECK(cudaGetDeviceProperties(&prop, 0) == cudaSuccess, "cudaGetDeviceProperties");
  std::printf("  %s: %.2f of %.2f GiB free, copy bandwidth %.0f GB/s\n", info.name.c_str(),
              info.free_bytes / 1073741824.0, info.total_bytes / 1073741824.0,
              info.copy_bandwidth_bytes_per_s / 1e9);
  CUDA_TEST_CHECK(!info.name.empty(), "no device name");
  CUDA_TEST_CHECK(info.free_bytes > 0 && info.free_bytes <= info.total_bytes, "free %llu of %llu",
                  static_cast<unsigned long long>(info.free_bytes),
                  static_cast<unsigned long long>(info.total_bytes));
  CUDA_TEST_CHECK(info.total_bytes == prop.totalGlobalMem, "total %llu, the driver says %llu",
                  static_cast<unsigned long long>(info.total_bytes),
                  static_cast<unsigned long long>(prop.totalGlobalMem));
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  const double peak = 2.0 * clock_khz * 1e3 * bus_bits / 8.0;
  std::printf("  theoretical peak %.0f GB/s\n", peak / 1e9);
  CUDA_TEST_CHECK(info.copy_bandwidth_bytes_per_s > 100e9, "copy bandwidth %.0f GB/s",
                  info.copy_bandwidth_bytes_per_s / 1e9);
  CUDA_TEST_CHECK(peak == 0 || info.copy_bandwidth_bytes_per_s < 2.0 * peak,
                  "copy bandwidth %.0f GB/s against a peak of %.0f", info.copy_bandwidth_bytes_per_s / 1e9,
                  peak / 1e9);
  int count = 0;
  cudaGetDeviceCount(&count);
  const absl::StatusOr<CudaDeviceInfo> missing = ProbeCudaDevice(count);
  CUDA_TEST_CHECK(!missing.ok() && missing.status().code() == absl::StatusCode::kFailedPrecondition &&
                      missing.status().message().find("cuda:" + std::to_string(count)) != std::string::npos,
                  "%s", missing.ok() ? "accepted" : missing.status().ToString().c_str());
}

void DescribeDeviceUsesTheGpu() {
  HostDevices host;
  host.free_memory_bytes = 7;
  host.read_bandwidth_bytes_per_s = 3;
  std::string name;
  CUDA_TEST_ASSERT_OK(DescribeDevice(Device{}, &host, &name));
  CUDA_TEST_CHECK(host.free_memory_bytes == 7 && host.device_type == "cpu" && name == "cpu",
                  "the CPU description changed");
  CUDA_TEST_ASSERT_OK(DescribeDevice(Device{Device::Kind::kCuda, {0}}, &host, &name));
  CUDA_TEST_CHECK(host.device_type == "cuda" && host.free_memory_bytes > 7 &&
                      host.read_bandwidth_bytes_per_s > 100e9 && !name.empty(),
                  "cuda:0 described as %s, %llu B free, %.0f B/s", host.device_type.c_str(),
                  static_cast<unsigned long long>(host.free_memory_bytes),
                  host.read_bandwidth_bytes_per_s);
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  return RunCudaTests("cuda_device_test", {{"ProbeReportsTheDevice", ProbeReportsTheDevice},
                                           {"DescribeDeviceUsesTheGpu", DescribeDeviceUsesTheGpu}});
}
