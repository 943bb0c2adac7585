#include "engine/cuda/nccl_collective.h"

#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/cuda/stream.h"

#if TESSERA_HAVE_NCCL
#include <nccl.h>
#endif

namespace tessera {

#if TESSERA_HAVE_NCCL
namespace {

absl::Status NcclStatus(ncclResult_t r, const char* call, ncclComm_t comm) {
  if (r == ncclSuccess) return absl::OkStatus();
  const char* detail = ncclGetLastError(comm);
  const std::string message =
      absl::StrFormat("%s: %s%s%s", call, ncclGetErrorString(r),
                      detail != nullptr && *detail != '\0' ? ": " : "",
                      detail != nullptr ? detail : "");
  if (r == ncclInvalidUsage || r == ncclInvalidArgument) {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

class NcclGroup final : public DeviceCollectiveGroup {
 public:
  class Rank;

  NcclGroup(const std::vector<int>& devices, const std::vector<ncclComm_t>& comms);
  // Finalizes and destroys the communicators (the runners using them have
  // drained their streams), or, after an abort, releases them.
  ~NcclGroup() override;

  int size() const override { return static_cast<int>(ranks_.size()); }
  DeviceCollective* rank(int r) override;
  void Abort() override { aborted_.store(true); }
  bool aborted() const override { return aborted_.load(); }
  void Release() override;

 private:
  // Calls fn(rank) for every rank at once, each on its own thread with its
  // device current: how NCCL expects one process to finalize, destroy or
  // abort the communicators of several GPUs (each call may wait for the
  // others).
  void ForEachRankAtOnce(const std::function<void(const Rank&)>& fn) const;

  std::vector<std::unique_ptr<Rank>> ranks_;
  std::atomic<bool> aborted_{false};
  bool released_ = false;  // the communicators were aborted
};

class NcclGroup::Rank final : public DeviceCollective {
 public:
  Rank(NcclGroup* group, int rank, int device, ncclComm_t comm)
      : group_(group), rank_(rank), device_(device), comm_(comm) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  std::string name() const override { return "nccl"; }
  bool capturable() const override { return true; }
  int device() const { return device_; }
  ncclComm_t comm() const { return comm_; }

  absl::Status AllReduceSum(float* data, int64_t n, cudaStream_t stream) override {
    if (n < 0) return absl::InvalidArgumentError(absl::StrFormat("NCCL all-reduce of %d", n));
    if (group_->aborted()) return Aborted();
    return NcclStatus(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum,
                                    comm_, stream),
                      "ncclAllReduce", comm_);
  }

  absl::Status AllGather(const float* in, int64_t n_per_rank, float* out,
                         cudaStream_t stream) override {
    if (n_per_rank < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("NCCL all-gather of %d", n_per_rank));
    }
    if (group_->aborted()) return Aborted();
    return NcclStatus(
        ncclAllGather(in, out, static_cast<size_t>(n_per_rank), ncclFloat32, comm_, stream),
        "ncclAllGather", comm_);
  }

  absl::Status Wait(cudaStream_t stream) override {
    return kernels::cuda::PollStream(stream, [this]() -> absl::Status {
      if (group_->aborted()) return Aborted();
      ncclResult_t async = ncclSuccess;
      const ncclResult_t asked = ncclCommGetAsyncError(comm_, &async);
      if (asked != ncclSuccess) return NcclStatus(asked, "ncclCommGetAsyncError", comm_);
      if (async != ncclSuccess && async != ncclInProgress) {
        return NcclStatus(async, "NCCL (asynchronous error)", comm_);
      }
      return absl::OkStatus();
    });
  }

  void Abort() override { group_->Abort(); }

 private:
  static absl::Status Aborted() {
    return absl::CancelledError("the NCCL group was aborted (a peer rank failed)");
  }

  NcclGroup* const group_;
  const int rank_;
  const int device_;
  const ncclComm_t comm_;
};

NcclGroup::NcclGroup(const std::vector<int>& devices, const std::vector<ncclComm_t>& comms) {
  for (size_t r = 0; r < devices.size(); ++r) {
    ranks_.push_back(std::make_unique<Rank>(this, static_cast<int>(r), devices[r], comms[r]));
  }
}

NcclGroup::~NcclGroup() {
  if (aborted()) {
    Release();  // ncclCommAbort frees them
    return;
  }
  ForEachRankAtOnce([](const Rank& r) {
    static_cast<void>(ncclCommFinalize(r.comm()));
    static_cast<void>(ncclCommDestroy(r.comm()));
  });
}

DeviceCollective* NcclGroup::rank(int r) { return ranks_[static_cast<size_t>(r)].get(); }

void NcclGroup::Release() {
  if (!aborted() || released_) return;
  released_ = true;
  // Sets each communicator's abort flag, which NCCL's kernels poll, so
  // kernels still waiting for a peer return; then frees the communicators.
  ForEachRankAtOnce([](const Rank& r) { static_cast<void>(ncclCommAbort(r.comm())); });
}

void NcclGroup::ForEachRankAtOnce(const std::function<void(const Rank&)>& fn) const {
  std::vector<std::thread> threads;
  for (const auto& r : ranks_) {
    threads.emplace_back([&fn, &r] {
      static_cast<void>(cudaSetDevice(r->device()));
      fn(*r);
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace

bool NcclBuilt() { return true; }

std::string NcclVersion() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL_VERSION(X, Y, Z) = X * 10000 + Y * 100 + Z since 2.9.
  return absl::StrFormat("%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

absl::StatusOr<std::unique_ptr<DeviceCollectiveGroup>> CreateNcclGroup(
    const std::vector<int>& devices) {
  if (devices.empty()) return absl::InvalidArgumentError("NCCL group: no devices");
  if (std::set<int>(devices.begin(), devices.end()).size() != devices.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "NCCL group: CUDA devices %s list a device twice (NCCL takes one rank per GPU)",
        absl::StrJoin(devices, ",")));
  }
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  const ncclResult_t made =
      ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data());
  if (made != ncclSuccess) {
    const absl::Status s = NcclStatus(made, "ncclCommInitAll", nullptr);
    return absl::Status(s.code(), absl::StrFormat("NCCL group over CUDA devices %s: %s",
                                                  absl::StrJoin(devices, ","), s.message()));
  }
  return std::unique_ptr<DeviceCollectiveGroup>(new NcclGroup(devices, comms));
}

#else  // !TESSERA_HAVE_NCCL

bool NcclBuilt() { return false; }

std::string NcclVersion() { return "none"; }

absl::StatusOr<std::unique_ptr<DeviceCollectiveGroup>> CreateNcclGroup(
    const std::vector<int>& devices) {
  return absl::UnimplementedError(absl::StrFormat(
      "tensor parallelism over CUDA devices %s needs NCCL, and this build has none: install "
      "NCCL (it ships with the CUDA toolkit, or as the nvidia-nccl Python package) and "
      "reconfigure, with -DTESSERA_NCCL_ROOT=DIR if it is not found",
      absl::StrJoin(devices, ",")));
}

#endif  // TESSERA_HAVE_NCCL

}  // namespace tessera
