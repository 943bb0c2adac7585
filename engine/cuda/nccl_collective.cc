#include "engine/cuda/nccl_collective.h"

#include <atomic>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

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
  // Destroys the communicators (the runners using them have drained their
  // streams), or leaves them to ncclCommAbort.
  ~NcclGroup() override;

  int size() const override { return static_cast<int>(ranks_.size()); }
  DeviceCollective* rank(int r) override;
  void Abort() override;
  bool aborted() const { return aborted_.load(); }

 private:
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::atomic<bool> aborted_{false};
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
  if (aborted()) return;  // ncclCommAbort freed them
  for (const auto& r : ranks_) {
    static_cast<void>(cudaSetDevice(r->device()));
    static_cast<void>(ncclCommDestroy(r->comm()));
  }
}

DeviceCollective* NcclGroup::rank(int r) { return ranks_[static_cast<size_t>(r)].get(); }

void NcclGroup::Abort() {
  if (aborted_.exchange(true)) return;
  for (const auto& r : ranks_) static_cast<void>(ncclCommAbort(r->comm()));
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
