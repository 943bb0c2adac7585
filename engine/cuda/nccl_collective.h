// NCCL communicators for the GPUs of one process: a tensor-parallel group
// inside one worker (`--device cuda:0,1,...`), rank r on the r-th device.
//
// CreateNcclGroup makes one communicator per device with ncclCommInitAll
// (one process, so no rendezvous) and hands out one DeviceCollective per
// rank; each rank's thread enqueues its collectives on its own stream. The
// operations enqueue device work only, so they can be captured into CUDA
// graphs (NCCL >= 2.9).
//
// Numerics: NCCL picks the algorithm (ring, tree, NVLS) by size and
// topology; every rank receives the same bits, but for more than two ranks
// the order of the additions is NCCL's, not rank order, so results may
// differ from the CPU group's in the last bits (two ranks: identical).
//
// Failure: Abort() marks the group aborted and calls ncclCommAbort on every
// communicator, which makes NCCL kernels still waiting for a peer return;
// later calls are CANCELLED. NCCL errors become INTERNAL (FAILED_PRECONDITION
// for a usage error) naming the call and NCCL's message.
//
// A build without NCCL compiles this file too: CreateNcclGroup is then
// UNIMPLEMENTED, naming how to get NCCL.
//
// Thread-safety: as DeviceCollective; Abort from any thread.
#ifndef TESSERA_ENGINE_CUDA_NCCL_COLLECTIVE_H_
#define TESSERA_ENGINE_CUDA_NCCL_COLLECTIVE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/cuda/device_collective.h"

namespace tessera {

// Whether this build links NCCL.
bool NcclBuilt();

// "2.28.9": the loaded library's version ("none" without NCCL).
std::string NcclVersion();

// `devices`: distinct CUDA ordinals, at least one (INVALID_ARGUMENT
// otherwise, naming them).
absl::StatusOr<std::unique_ptr<DeviceCollectiveGroup>> CreateNcclGroup(
    const std::vector<int>& devices);

}  // namespace tessera

#endif  // TESSERA_ENGINE_CUDA_NCCL_COLLECTIVE_H_
