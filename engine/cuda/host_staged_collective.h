// A DeviceCollective that goes through host memory: each operation copies
// the rank's device data to pinned host memory, waits for its stream, runs
// the CPU group's collective (engine/cpu_collective.h: sums in rank order
// 0..N-1) and copies the result back.
//
// It works for any placement of ranks, including several ranks on one GPU,
// which NCCL refuses; that is what it is for: exercising the tensor-parallel
// CUDA runner with two or more ranks on a machine with one GPU, with the CPU
// group's exact numerics. It synchronises the host with the stream at every
// call, so it is slow (two PCIe copies and a host barrier per call) and
// cannot be captured into a CUDA graph (capturable() is false).
//
// Thread-safety: as DeviceCollective; Abort from any thread.
#ifndef TESSERA_ENGINE_CUDA_HOST_STAGED_COLLECTIVE_H_
#define TESSERA_ENGINE_CUDA_HOST_STAGED_COLLECTIVE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/cpu_collective.h"
#include "engine/cuda/device_collective.h"

namespace tessera {

class HostStagedGroup final : public DeviceCollectiveGroup {
 public:
  explicit HostStagedGroup(int size);
  ~HostStagedGroup() override;
  HostStagedGroup(const HostStagedGroup&) = delete;
  HostStagedGroup& operator=(const HostStagedGroup&) = delete;

  int size() const override { return cpu_.size(); }
  DeviceCollective* rank(int r) override;
  void Abort() override;
  bool aborted() const override { return aborted_.load(); }
  // Nothing to end: the ranks' copies wait on no other GPU.
  void Release() override {}

 private:
  class Rank;
  CpuCollectiveGroup cpu_;
  std::atomic<bool> aborted_{false};
  std::vector<std::unique_ptr<Rank>> ranks_;
};

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_HOST_STAGED_COLLECTIVE_H_
