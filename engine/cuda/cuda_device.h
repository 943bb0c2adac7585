// Whether a CUDA device can be used, asked of the driver without creating
// anything on it.
#ifndef TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_
#define TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_

#include "absl/status/status.h"

namespace tessera {

// OK when device `index` exists; otherwise FAILED_PRECONDITION naming
// "--device cuda:<index>" and what the driver said (no device, no driver,
// fewer devices than that).
absl::Status CudaDeviceAvailable(int index);

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_CUDA_DEVICE_H_
