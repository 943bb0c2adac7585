// What a worker reports about its machine when it joins: the device, how much
// memory it may use, and how fast it can stream weights from memory (the
// bound on decode speed the planner uses to balance stages).
//
// Memory figures take the container's limit into account: a worker in a
// cgroup with a 16 GiB limit on a 512 GiB host must report 16 GiB, or the
// planner would give it layers that get it OOM-killed. Both cgroup v2
// (memory.max / memory.current) and v1 (memory.limit_in_bytes /
// memory.usage_in_bytes) are read, for the process's own cgroup and each of
// its ancestors; the tightest limit wins.
//
// All functions are safe to call from any thread; they share no state.
// MeasureReadBandwidth allocates `bytes` and keeps `threads` cores busy for
// about `seconds`, so call it once at start-up, not on a serving path.
#ifndef TESSERA_COMMON_HOST_PROBE_H_
#define TESSERA_COMMON_HOST_PROBE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera {

struct HostDevices {
  std::string device_type = "cpu";
  // CPU: 1 (threads are not devices; a host is one CPU device).
  int device_count = 1;
  // Hardware threads this process may run on: hardware_concurrency, or the
  // CPU affinity mask if that is smaller (a pinned or cpuset-limited worker).
  int threads = 0;
  // MemTotal, lowered to the cgroup memory limit when that is smaller.
  uint64_t total_memory_bytes = 0;
  // MemAvailable, capped by (cgroup limit - cgroup usage) when in a limited
  // cgroup. Usage excludes inactive file cache, which the kernel reclaims
  // before it OOM-kills, so mapped-but-cold model pages do not count against
  // it. Never above total_memory_bytes.
  uint64_t free_memory_bytes = 0;
  // Bytes/s; ProbeHost leaves it 0 (measuring takes a few hundred ms and a
  // large buffer): set it from MeasureReadBandwidth(threads).
  double read_bandwidth_bytes_per_s = 0;
  // Filled by the caller (the kernels know which ISA they dispatched); empty.
  std::string cpu_isa;
};

// Where ProbeHost reads from; tests point these at fixture files.
struct HostProbeSources {
  std::string meminfo_path = "/proc/meminfo";
  // Lines "<id>:<controllers>:<path>", as in /proc/self/cgroup.
  std::string self_cgroup_path = "/proc/self/cgroup";
  // The cgroup v2 mount; the v1 memory hierarchy is <cgroup_root>/memory.
  std::string cgroup_root = "/sys/fs/cgroup";
};

// Reads /proc/meminfo and any cgroup memory limit. NOT_FOUND naming the file
// when /proc/meminfo is missing, INTERNAL naming it when it cannot be read,
// NOT_FOUND naming the key when MemTotal or MemAvailable is absent. Cgroup
// files are optional: missing or unparsable ones are skipped.
absl::StatusOr<HostDevices> ProbeHost(const HostProbeSources& sources = HostProbeSources());

// Read bandwidth in bytes/s: `threads` threads (at least 1) each sum their
// share of a `bytes` buffer (default 256 MiB, larger than any cache), pass
// after pass for about `seconds`; returns the best pass. 0 if the buffer
// cannot be allocated.
double MeasureReadBandwidth(int threads, uint64_t bytes = 256ull << 20, double seconds = 0.3);

// Parses /proc/meminfo-format text: the value of the line "<key>: <n> kB" in
// bytes (n * 1024; a line without the kB unit, such as HugePages_Total, gives
// n as is). NOT_FOUND naming the key when there is no such line,
// INVALID_ARGUMENT naming it when the value is not a number.
absl::StatusOr<uint64_t> ParseMeminfoField(std::string_view meminfo_text, std::string_view key);

}  // namespace tessera

#endif  // TESSERA_COMMON_HOST_PROBE_H_
