#include "engine/step_runner_factory.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "engine/tensor_parallel_runner.h"
#include "kernels/cpu/thread_pool.h"

#if TESSERA_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_model_runner.h"
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
  return kind == Kind::kCpu ? "cpu" : absl::StrFormat("cuda:%d", index);
}

absl::StatusOr<Device> ParseDevice(absl::string_view text) {
  Device d;
  if (text == "cpu") return d;
  if (text == "cuda") {
    d.kind = Device::Kind::kCuda;
    return d;
  }
  int index = 0;
  if (absl::StartsWith(text, "cuda:") && absl::SimpleAtoi(text.substr(5), &index) && index >= 0) {
    d.kind = Device::Kind::kCuda;
    d.index = index;
    return d;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "--device %s: must be cpu, cuda or cuda:N (N a device ordinal)", text));
}

bool CudaBackendBuilt() { return TESSERA_HAVE_CUDA != 0; }

absl::Status CheckDevice(const Device& device, int tp) {
  if (tp < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("--tp %d: must be at least 1", tp));
  }
  if (device.kind == Device::Kind::kCpu) return absl::OkStatus();
  if (!CudaBackendBuilt()) {
    return absl::UnimplementedError(absl::StrFormat(
        "--device %s: this build has no CUDA backend (it was built without nvcc, or with "
        "-DTESSERA_WITH_CUDA=OFF); rebuild on a machine with the CUDA toolkit, or use "
        "--device cpu",
        device.ToString()));
  }
  if (tp > 1) {
    return absl::UnimplementedError(absl::StrFormat(
        "--tp %d with --device %s: tensor parallelism over GPUs (NCCL) is not implemented yet; "
        "use --tp 1 per GPU worker",
        tp, device.ToString()));
  }
#if TESSERA_HAVE_CUDA
  return CudaDeviceAvailable(device.index);
#else
  return absl::OkStatus();
#endif
}

absl::Status DescribeDevice(const Device& device, HostDevices* devices, std::string* name) {
  if (device.kind == Device::Kind::kCpu) {
    *name = "cpu";
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(CheckDevice(device, 1));
#if TESSERA_HAVE_CUDA
  ASSIGN_OR_RETURN(const CudaDeviceInfo info, ProbeCudaDevice(device.index));
  devices->device_type = "cuda";
  devices->device_count = 1;
  devices->total_memory_bytes = info.total_bytes;
  devices->free_memory_bytes = info.free_bytes;
  devices->read_bandwidth_bytes_per_s = info.copy_bandwidth_bytes_per_s;
  *name = info.name;
#endif
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StepRunner>> CreateStepRunner(const GgufFile& file,
                                                             const ModelConfig& config,
                                                             LayerRange range,
                                                             const RunnerOptions& options) {
  RETURN_IF_ERROR(CheckDevice(options.device, options.tp));
  if (options.device.kind == Device::Kind::kCuda) {
#if TESSERA_HAVE_CUDA
    // The host copy lives only while the runner uploads it.
    ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights,
                     ModelWeights::Load(file, config, range));
    CudaRunnerOptions co;
    co.device = options.device.index;
    co.kv_blocks = options.kv_blocks;
    co.block_size = options.kv_block_size;
    co.kv_dtype = options.kv_dtype;
    ASSIGN_OR_RETURN(std::unique_ptr<CudaModelRunner> runner,
                     CudaModelRunner::Create(*weights, co));
    return std::unique_ptr<StepRunner>(std::move(runner));
#endif
  }
  if (options.tp > 1) {
    TensorParallelOptions tpo;
    tpo.tp = options.tp;
    tpo.kv_blocks = options.kv_blocks;
    tpo.kv_block_size = options.kv_block_size;
    tpo.kv_dtype = options.kv_dtype;
    tpo.threads_per_rank = std::max(1, options.threads / options.tp);
    // Create checks the degree against the model before loading anything.
    ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelRunner> runner,
                     TensorParallelRunner::Create(file, config, range, tpo));
    return std::unique_ptr<StepRunner>(std::move(runner));
  }
  return CpuRunner::Create(file, config, range, options);
}

}  // namespace tessera
