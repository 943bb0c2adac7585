#include "engine/step_runner_factory.h"

#include <stdlib.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "engine/tensor_parallel_runner.h"
#include "kernels/cpu/thread_pool.h"

#if TESSERA_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/cuda_tensor_parallel_runner.h"
#include "engine/cuda/nccl_collective.h"
#endif

namespace tessera {
namespace {

// One ModelRunner with the weights, KV pool and thread pool it runs on.
class CpuRunner final : public StepRunner {
 public:
  static absl::StatusOr<std::unique_ptr<StepRunner>> Create(const GgufFile& file,
                                                            const ModelConfig& config,
                                                            LayerRange range,
                                                            const RunnerOptions& o) {
    std::unique_ptr<CpuRunner> r(new CpuRunner());
    ASSIGN_OR_RETURN(r->weights_, ModelWeights::Load(file, config, range));
    r->pool_ = std::make_unique<kernels::ThreadPool>(std::max(1, o.threads));
    r->kv_ = std::make_unique<KvCache>(config, range, o.kv_blocks, o.kv_block_size, o.kv_dtype);
    r->runner_ = std::make_unique<ModelRunner>(r->weights_.get(), r->kv_.get(), r->pool_.get());
    return std::unique_ptr<StepRunner>(std::move(r));
  }

  absl::Status Forward(absl::Span<const SequenceStep> seqs, absl::Span<const float> hidden_in,
                       StepOutput* out) override {
    return runner_->Forward(seqs, hidden_in, out);
  }
  const ModelConfig& model_config() const override { return runner_->model_config(); }
  LayerRange range() const override { return runner_->range(); }
  int64_t kv_blocks() const override { return runner_->kv_blocks(); }
  uint64_t weight_bytes() const override { return runner_->weight_bytes(); }
  uint64_t kv_bytes() const override { return runner_->kv_bytes(); }
  std::string device() const override { return runner_->device(); }

 private:
  CpuRunner() = default;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<ModelRunner> runner_;
};

}  // namespace

std::string Device::ToString() const {
  if (kind == Kind::kCpu) return "cpu";
  return absl::StrCat("cuda:", ordinals.empty() ? "0" : absl::StrJoin(ordinals, ","));
}

absl::StatusOr<Device> ParseDevice(absl::string_view text) {
  Device d;
  if (text == "cpu") return d;
  d.kind = Device::Kind::kCuda;
  if (text == "cuda") {
    d.ordinals = {0};
    return d;
  }
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--device %s: must be cpu, cuda, cuda:N or cuda:N,M,... (N, M distinct device "
        "ordinals, one tensor-parallel rank each)",
        text));
  };
  if (!absl::StartsWith(text, "cuda:")) return bad();
  for (absl::string_view part : absl::StrSplit(text.substr(5), ',')) {
    int index = 0;
    if (!absl::SimpleAtoi(part, &index) || index < 0) return bad();
    if (std::find(d.ordinals.begin(), d.ordinals.end(), index) != d.ordinals.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--device %s: CUDA device %d is listed twice (one rank per GPU)", text, index));
    }
    d.ordinals.push_back(index);
  }
  return d;
}

absl::Status ResolveTensorParallel(Device* device, int* tp) {
  if (*tp < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("--tp %d: must be at least 1", *tp));
  }
  if (device->kind == Device::Kind::kCpu) return absl::OkStatus();
  if (device->ordinals.empty()) device->ordinals = {0};
  const int listed = static_cast<int>(device->ordinals.size());
  if (listed == 1 && *tp > 1) {
    const int first = device->ordinals[0];
    for (int r = 1; r < *tp; ++r) device->ordinals.push_back(first + r);
    return absl::OkStatus();
  }
  if (listed > 1 && *tp != 1 && *tp != listed) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--device %s lists %d GPUs but --tp is %d: each listed GPU is one tensor-parallel "
        "rank, so leave --tp out or make it %d",
        device->ToString(), listed, *tp, listed));
  }
  *tp = listed;
  return absl::OkStatus();
}

bool CudaBackendBuilt() { return TESSERA_HAVE_CUDA != 0; }

bool NcclBackendBuilt() {
#if TESSERA_HAVE_CUDA
  return NcclBuilt();
#else
  return false;
#endif
}

absl::Status CheckDevice(const Device& requested, int requested_tp) {
  Device device = requested;
  int tp = requested_tp;
  RETURN_IF_ERROR(ResolveTensorParallel(&device, &tp));
  if (device.kind == Device::Kind::kCpu) return absl::OkStatus();
  if (!CudaBackendBuilt()) {
    return absl::UnimplementedError(absl::StrFormat(
        "--device %s: this build has no CUDA backend (it was built without nvcc, or with "
        "-DTESSERA_WITH_CUDA=OFF); rebuild on a machine with the CUDA toolkit, or use "
        "--device cpu",
        device.ToString()));
  }
  if (tp > 1 && !NcclBackendBuilt()) {
    return absl::UnimplementedError(absl::StrFormat(
        "--device %s (tp %d): tensor parallelism over GPUs needs NCCL and this build has none; "
        "install NCCL (with the CUDA toolkit, or the nvidia-nccl Python package and "
        "-DTESSERA_NCCL_ROOT=DIR) and rebuild, or run one GPU per worker",
        device.ToString(), tp));
  }
#if TESSERA_HAVE_CUDA
  for (int ordinal : device.ordinals) RETURN_IF_ERROR(CudaDeviceAvailable(ordinal));
#endif
  if (tp > 1) {
    // Every NCCL connection made when the group is created rather than at a
    // collective's first use, so enqueuing a collective never waits on the
    // host for a peer that has failed (and cannot hang a step). Set here,
    // at start, before the worker runs other threads; an operator's own
    // value is kept.
    setenv("NCCL_RUNTIME_CONNECT", "0", /*overwrite=*/0);
  }
  return absl::OkStatus();
}

absl::Status DescribeDevice(const Device& device, HostDevices* devices, std::string* name) {
  if (device.kind == Device::Kind::kCpu) {
    *name = "cpu";
    return absl::OkStatus();
  }
  const int n = std::max<int>(1, static_cast<int>(device.ordinals.size()));
  RETURN_IF_ERROR(CheckDevice(device, n));
#if TESSERA_HAVE_CUDA
  HostDevices gpus;
  gpus.device_type = "cuda";
  gpus.device_count = n;
  std::vector<std::string> names;
  for (int ordinal : device.ordinals.empty() ? std::vector<int>{0} : device.ordinals) {
    ASSIGN_OR_RETURN(const CudaDeviceInfo info, ProbeCudaDevice(ordinal));
    gpus.total_memory_bytes += info.total_bytes;
    gpus.free_memory_bytes += info.free_bytes;
    gpus.read_bandwidth_bytes_per_s += info.copy_bandwidth_bytes_per_s;
    names.push_back(info.name);
  }
  devices->device_type = gpus.device_type;
  devices->device_count = gpus.device_count;
  devices->total_memory_bytes = gpus.total_memory_bytes;
  devices->free_memory_bytes = gpus.free_memory_bytes;
  devices->read_bandwidth_bytes_per_s = gpus.read_bandwidth_bytes_per_s;
  const bool same = std::all_of(names.begin(), names.end(),
                                [&](const std::string& x) { return x == names[0]; });
  *name = n == 1 ? names[0]
          : same ? absl::StrFormat("%d x %s", n, names[0])
                 : absl::StrJoin(names, " + ");
#endif
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StepRunner>> CreateStepRunner(const GgufFile& file,
                                                             const ModelConfig& config,
                                                             LayerRange range,
                                                             const RunnerOptions& options) {
  RETURN_IF_ERROR(CheckDevice(options.device, options.tp));
  Device device = options.device;
  int tp = options.tp;
  RETURN_IF_ERROR(ResolveTensorParallel(&device, &tp));
  if (device.kind == Device::Kind::kCuda) {
#if TESSERA_HAVE_CUDA
    if (tp > 1) {
      CudaTensorParallelOptions to;
      to.devices = device.ordinals;
      to.kv_blocks = options.kv_blocks;
      to.block_size = options.kv_block_size;
      to.kv_dtype = options.kv_dtype;
      ASSIGN_OR_RETURN(std::unique_ptr<CudaTensorParallelRunner> runner,
                       CudaTensorParallelRunner::Create(file, config, range, to));
      return std::unique_ptr<StepRunner>(std::move(runner));
    }
    // The host copy lives only while the runner uploads it.
    ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights,
                     ModelWeights::Load(file, config, range));
    CudaRunnerOptions co;
    co.device = device.ordinals[0];
    co.kv_blocks = options.kv_blocks;
    co.block_size = options.kv_block_size;
    co.kv_dtype = options.kv_dtype;
    ASSIGN_OR_RETURN(std::unique_ptr<CudaModelRunner> runner,
                     CudaModelRunner::Create(*weights, co));
    return std::unique_ptr<StepRunner>(std::move(runner));
#endif
  }
  if (tp > 1) {
    TensorParallelOptions tpo;
    tpo.tp = tp;
    tpo.kv_blocks = options.kv_blocks;
    tpo.kv_block_size = options.kv_block_size;
    tpo.kv_dtype = options.kv_dtype;
    tpo.threads_per_rank = std::max(1, options.threads / tp);
    // Create checks the degree against the model before loading anything.
    ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelRunner> runner,
                     TensorParallelRunner::Create(file, config, range, tpo));
    return std::unique_ptr<StepRunner>(std::move(runner));
  }
  return CpuRunner::Create(file, config, range, options);
}

}  // namespace tessera
