// Owning handles for CUDA streams and events, and the device probe.
//
// Stream and Event are move-only and destroy their handle in the destructor;
// they are created through static Create functions that return a Status.
// ProbeDevice is how tests and tools decide between running and printing a
// SKIPPED line: it never aborts when there is no driver or no GPU.
//
// Thread-safety: handles are plain owners. CUDA streams themselves may be used
// from several threads, but Tessera's runners use one stream from one thread.
#ifndef TESSERA_KERNELS_CUDA_STREAM_H_
#define TESSERA_KERNELS_CUDA_STREAM_H_

#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace tessera::kernels::cuda {

class Stream {
 public:
  Stream() = default;
  ~Stream();
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // A non-blocking stream (does not synchronise with the legacy default stream).
  static absl::StatusOr<Stream> Create();

  cudaStream_t get() const { return stream_; }
  absl::Status Synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event() = default;
  ~Event();
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // A timing event (cudaEventDefault).
  static absl::StatusOr<Event> Create();

  cudaEvent_t get() const { return event_; }
  absl::Status Record(cudaStream_t stream) const;
  absl::Status Synchronize() const;
  // Milliseconds from `start` to this event; both must have completed.
  absl::StatusOr<float> MillisecondsSince(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

// Waits, polling, until `stream` has done everything enqueued on it so far
// (OK, or the error of a failed launch), unless `interrupt` returns non-OK
// first: it is asked between polls, and its status is returned. This is a
// wait that can be given up, for a stream whose work may wait forever on
// another GPU's. Polls spin for about a millisecond, then sleep 20 us apart.
absl::Status PollStream(cudaStream_t stream, absl::FunctionRef<absl::Status()> interrupt);

// What a process can run on.
struct DeviceInfo {
  int device = 0;
  std::string name;
  int sm_major = 0;
  int sm_minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
};

// Device 0 if the driver reports at least one GPU; otherwise
// FAILED_PRECONDITION whose message is "no CUDA device (<reason>)", where
// the reason is cudaGetErrorString of what cudaGetDeviceCount returned (or
// "0 devices"). Tests print that message after "SKIPPED: ".
absl::StatusOr<DeviceInfo> ProbeDevice();

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_STREAM_H_
