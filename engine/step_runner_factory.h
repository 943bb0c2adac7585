// The one place that decides which StepRunner (step_runner.h) computes a
// layer range: from a worker's or `tessera run`'s --device and --tp.
//
//   --device cpu       ModelRunner (tp 1) or TensorParallelRunner (tp > 1)
//   --device cuda[:N]  CudaModelRunner on device N (default 0), tp 1
//
// Refusals, before anything is loaded: an unknown device string is
// INVALID_ARGUMENT naming --device; --device cuda in a build without the
// CUDA backend is UNIMPLEMENTED naming the flag and how to get one; on a
// machine without that CUDA device it is FAILED_PRECONDITION naming the
// device and what the driver said; --tp > 1 with CUDA is UNIMPLEMENTED (NCCL
// tensor parallelism is issue 20).
//
// Thread-safety: pure functions; the runner returned is single-threaded.
#ifndef TESSERA_ENGINE_STEP_RUNNER_FACTORY_H_
#define TESSERA_ENGINE_STEP_RUNNER_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/gguf/gguf_file.h"
#include "common/host_probe.h"
#include "common/model_config.h"
#include "engine/step_runner.h"
#include "kernels/kernels.h"

namespace tessera {

struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // CUDA device ordinal
  std::string ToString() const;  // "cpu", "cuda:0"
};

// "cpu", "cuda" (= "cuda:0") or "cuda:N".
absl::StatusOr<Device> ParseDevice(absl::string_view text);

// Whether this build has the CUDA backend.
bool CudaBackendBuilt();

// OK when `device` with `tp` ranks can run here; the refusals above.
absl::Status CheckDevice(const Device& device, int tp);

// What a worker on `device` offers the planner: for --device cuda[:N] the
// GPU's free and total memory (cudaMemGetInfo) and its measured copy
// bandwidth replace the host's in `devices` (device_type "cuda"), and
// `name` is set to the GPU's name; for the CPU nothing changes. The refusals
// of CheckDevice, or INTERNAL naming a failed CUDA call.
absl::Status DescribeDevice(const Device& device, HostDevices* devices, std::string* name);

struct RunnerOptions {
  Device device;
  int tp = 1;
  int64_t kv_blocks = 256;
  int kv_block_size = 16;
  kernels::DType kv_dtype = kernels::DType::kF32;
  // CPU kernel threads in all (split over the ranks when tp > 1).
  int threads = 1;
};

// Loads `range` of `file` (which must outlive a CPU runner; a CUDA runner
// copies what it needs to the device) for `options.device`.
absl::StatusOr<std::unique_ptr<StepRunner>> CreateStepRunner(const GgufFile& file,
                                                             const ModelConfig& config,
                                                             LayerRange range,
                                                             const RunnerOptions& options);

}  // namespace tessera

#endif  // TESSERA_ENGINE_STEP_RUNNER_FACTORY_H_
