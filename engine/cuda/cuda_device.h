// Whether a CUDA device can be used, asked of the driver without creating
// anything on it; and what one offers a planner (memory, bandwidth).
#ifndef TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_
#define TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {

// OK when device `index` exists; otherwise FAILED_PRECONDITION naming
// "--device cuda:<index>" and what the driver said (no device, no driver,
// fewer devices than that).
absl::Status CudaDeviceAvailable(int index);

struct CudaDeviceInfo {
  std::string name;            // cudaDeviceProp::name
  uint64_t free_bytes = 0;     // cudaMemGetInfo, before this process loads anything
  uint64_t total_bytes = 0;
  // Bytes moved per second by a device-to-device copy of a large buffer
  // (read + write, best of a few): what weight reads of a decode step run at,
  // as MeasureReadBandwidth is for a CPU.
  double copy_bandwidth_bytes_per_s = 0;
};

// Memory and measured bandwidth of device `index` (CudaDeviceAvailable's
// refusals first; INTERNAL naming the CUDA call that failed). Allocates and
// frees up to 512 MiB on the device for the bandwidth measurement.
absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice(int index);

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_
