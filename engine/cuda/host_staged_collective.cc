#include "engine/cuda/host_staged_collective.h"

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/stream.h"

namespace tessera {

class HostStagedGroup::Rank final : public DeviceCollective {
 public:
  Rank(HostStagedGroup* group, int rank) : group_(group), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  std::string name() const override { return "host-staged"; }
  bool capturable() const override { return false; }

  absl::Status AllReduceSum(float* data, int64_t n, cudaStream_t stream) override {
    if (n < 0) return absl::InvalidArgumentError(absl::StrFormat("all-reduce of %d", n));
    RETURN_IF_ERROR(Down(data, n, &in_, stream));
    RETURN_IF_ERROR(group_->cpu_.rank(rank_)->AllReduceSum(in_.as<float>(), n));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(data, in_.data(), n * sizeof(float),
                                         cudaMemcpyHostToDevice, stream));
    return absl::OkStatus();
  }

  absl::Status AllGather(const float* in, int64_t n_per_rank, float* out,
                         cudaStream_t stream) override {
    if (n_per_rank < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("all-gather of %d", n_per_rank));
    }
    const int64_t total = n_per_rank * size();
    RETURN_IF_ERROR(Down(in, n_per_rank, &in_, stream));
    RETURN_IF_ERROR(out_.Reserve(total * sizeof(float)));
    RETURN_IF_ERROR(
        group_->cpu_.rank(rank_)->AllGather(in_.as<float>(), n_per_rank, out_.as<float>()));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, out_.data(), total * sizeof(float),
                                         cudaMemcpyHostToDevice, stream));
    return absl::OkStatus();
  }

  absl::Status Wait(cudaStream_t stream) override {
    return kernels::cuda::PollStream(stream, [this] {
      return group_->aborted() ? absl::CancelledError("the host-staged group was aborted")
                               : absl::OkStatus();
    });
  }

  void Abort() override { group_->Abort(); }

 private:
  // Copies n floats of device memory into `host` once the stream has
  // reached this point. The stream is drained first, so the previous call's
  // copy back out of the pinned buffers is done before they are reused.
  static absl::Status Down(const float* device, int64_t n, kernels::cuda::PinnedBuffer* host,
                           cudaStream_t stream) {
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    RETURN_IF_ERROR(host->Reserve(n * sizeof(float)));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(host->data(), device, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    return absl::OkStatus();
  }

  HostStagedGroup* const group_;
  const int rank_;
  kernels::cuda::PinnedBuffer in_, out_;
};

HostStagedGroup::HostStagedGroup(int size) : cpu_(size) {
  for (int r = 0; r < size; ++r) ranks_.push_back(std::make_unique<Rank>(this, r));
}

HostStagedGroup::~HostStagedGroup() = default;

void HostStagedGroup::Abort() {
  aborted_.store(true);
  cpu_.Abort("a peer rank failed");
}

DeviceCollective* HostStagedGroup::rank(int r) { return ranks_[static_cast<size_t>(r)].get(); }

}  // namespace tessera
