// The one place that decides which StepRunner (step_runner.h) computes a
// layer range: from a worker's or `tessera run`'s --device and --tp.
//
//   --device cpu              ModelRunner (tp 1) or TensorParallelRunner (tp > 1)
//   --device cuda[:N]         CudaModelRunner on device N (default 0), tp 1
//   --device cuda:N,M,...     CudaTensorParallelRunner, one rank per listed
//                             GPU, over NCCL (tp = the list's length)
//   --device cuda[:N] --tp T  the same on devices N..N+T-1
//
// Refusals, before anything is loaded: an unknown device string, a GPU
// listed twice, or a --tp that contradicts the list is INVALID_ARGUMENT
// naming the flags; --device cuda in a build without the CUDA backend is
// UNIMPLEMENTED naming the flag and how to get one, and so is CUDA tensor
// parallelism in a build without NCCL; on a machine without a listed CUDA
// device it is FAILED_PRECONDITION naming the device and what the driver
// said.
//
// Thread-safety: pure functions; the runner returned is single-threaded.
#ifndef TESSERA_ENGINE_STEP_RUNNER_FACTORY_H_
#define TESSERA_ENGINE_STEP_RUNNER_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  // CUDA device ordinals, one per tensor-parallel rank; empty for the CPU.
  std::vector<int> ordinals;
  std::string ToString() const;  // "cpu", "cuda:0", "cuda:0,1"
};

// "cpu", "cuda" (= "cuda:0"), "cuda:N" or "cuda:N,M,..." (distinct ordinals).
absl::StatusOr<Device> ParseDevice(absl::string_view text);

// Makes --device and --tp agree: a CUDA list sets the degree (--tp must be
// 1 or the list's length), and one CUDA ordinal N with --tp T > 1 becomes
// the list N..N+T-1. The CPU keeps its --tp. INVALID_ARGUMENT naming both
// flags when they contradict each other, or --tp is below 1.
absl::Status ResolveTensorParallel(Device* device, int* tp);

// Whether this build has the CUDA backend, and NCCL for CUDA tensor
// parallelism.
bool CudaBackendBuilt();
bool NcclBackendBuilt();

// OK when `device` with `tp` ranks (resolved as ResolveTensorParallel does)
// can run here; the refusals above. For CUDA tensor parallelism it also sets
// NCCL_RUNTIME_CONNECT=0 unless the environment has it (all connections at
// start: no collective then waits on the host for a failed peer), so call it
// at start, before other threads run.
absl::Status CheckDevice(const Device& device, int tp);

// What a worker on `device` offers the planner: for CUDA the GPUs' free
// and total memory (cudaMemGetInfo, summed over the listed GPUs, each of
// which holds 1/N of the stage) and their measured copy bandwidths (summed
// too: the ranks read their shards at once) replace the host's in `devices`
// (device_type "cuda", device_count the number of GPUs), and `name` is set
// to the GPU's name ("2 x NAME" for a list); for the CPU nothing changes.
// The refusals of CheckDevice, or INTERNAL naming a failed CUDA call.
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
