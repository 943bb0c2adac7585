#include "common/host_probe.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Reads a whole file. /proc and /sys files report size 0, so this reads until
// EOF rather than trusting stat.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (f == nullptr) {
    int err = errno;
    std::string msg = absl::StrFormat("%s: cannot open: %s", path, std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  std::string out;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f.get())) > 0) out.append(buf, got);
  if (std::ferror(f.get())) return absl::InternalError(absl::StrFormat("%s: read error", path));
  return out;
}

// Reads the single unsigned number in a cgroup file. False for "max", a
// missing file or junk, all of which mean "no limit known here".
bool ReadCgroupNumber(const std::string& path, uint64_t* value) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return false;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), value);
}

// The value of "<key> <n>" in a memory.stat file, or 0.
uint64_t ReadStatField(const std::string& path, absl::string_view key) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    uint64_t v = 0;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &v)) return v;
  }
  return 0;
}

// `root` + `path` and each ancestor up to `root` itself.
std::vector<std::string> CgroupDirs(const std::string& root, absl::string_view path) {
  std::vector<std::string> dirs;
  std::string p(absl::StripSuffix(path, "/"));
  while (!p.empty()) {
    dirs.push_back(root + p);
    size_t slash = p.rfind('/');
    p.resize(slash == std::string::npos ? 0 : slash);
  }
  dirs.push_back(root);
  return dirs;
}

// Names of the limit, usage and reclaimable-cache stat in one cgroup version.
struct CgroupFiles {
  const char* limit;
  const char* usage;
  const char* inactive_file_stat;
};
constexpr CgroupFiles kCgroupV2 = {"memory.max", "memory.current", "inactive_file"};
constexpr CgroupFiles kCgroupV1 = {"memory.limit_in_bytes", "memory.usage_in_bytes",
                                   "total_inactive_file"};

// v1 reports "no limit" as a huge page-rounded number rather than "max".
constexpr uint64_t kUnlimitedAbove = 1ull << 62;

// Lowers *total and *free to the limits of every cgroup in `dirs`.
void ApplyCgroupLimits(const std::vector<std::string>& dirs, const CgroupFiles& files,
                       uint64_t* total, uint64_t* free) {
  for (const std::string& dir : dirs) {
    uint64_t limit = 0;
    if (!ReadCgroupNumber(dir + "/" + files.limit, &limit) || limit >= kUnlimitedAbove) continue;
    *total = std::min(*total, limit);
    uint64_t usage = 0;
    if (ReadCgroupNumber(dir + "/" + files.usage, &usage)) {
      uint64_t inactive = ReadStatField(dir + "/memory.stat", files.inactive_file_stat);
      usage = usage > inactive ? usage - inactive : 0;
    }
    *free = std::min(*free, limit > usage ? limit - usage : 0);
  }
}

int UsableThreads() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int allowed = CPU_COUNT(&set);
    if (allowed > 0 && (threads <= 0 || allowed < threads)) threads = allowed;
  }
  return std::max(threads, 1);
}

// Four accumulators break the add dependency chain so the loop is bound by
// memory, not by add latency; the sum is returned so the reads stay live.
uint64_t SumWords(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

// Where pass results go, so no optimiser can prove the sums unused.
volatile uint64_t g_bandwidth_sink = 0;

}  // namespace

absl::StatusOr<uint64_t> ParseMeminfoField(std::string_view meminfo_text, std::string_view key) {
  for (absl::string_view line : absl::StrSplit(ToAbsl(meminfo_text), '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || line.substr(0, colon) != ToAbsl(key)) continue;
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    uint64_t multiplier = 1;
    if (absl::ConsumeSuffix(&value, "kB")) {
      multiplier = 1024;
      value = absl::StripAsciiWhitespace(value);
    }
    uint64_t n = 0;
    if (!absl::SimpleAtoi(value, &n) || n > UINT64_MAX / multiplier) {
      return absl::InvalidArgumentError(
          absl::StrFormat("meminfo: bad value for '%s': '%s'", ToAbsl(key), value));
    }
    return n * multiplier;
  }
  return absl::NotFoundError(absl::StrFormat("meminfo: no '%s' line", ToAbsl(key)));
}

absl::StatusOr<HostDevices> ProbeHost(const HostProbeSources& sources) {
  ASSIGN_OR_RETURN(std::string meminfo, ReadWholeFile(sources.meminfo_path));
  HostDevices host;
  host.threads = UsableThreads();
  absl::StatusOr<uint64_t> total = ParseMeminfoField(meminfo, "MemTotal");
  absl::StatusOr<uint64_t> available = ParseMeminfoField(meminfo, "MemAvailable");
  for (const absl::StatusOr<uint64_t>* s : {&total, &available}) {
    if (!s->ok()) {
      return absl::Status(s->status().code(),
                          absl::StrCat(sources.meminfo_path, ": ", s->status().message()));
    }
  }
  host.total_memory_bytes = *total;
  host.free_memory_bytes = *available;

  // The cgroup paths come from /proc/self/cgroup; without it (or in a cgroup
  // namespace, where the path is "/") only the mount roots are checked.
  std::string v2_path, v1_path;
  if (absl::StatusOr<std::string> self = ReadWholeFile(sources.self_cgroup_path); self.ok()) {
    for (absl::string_view line : absl::StrSplit(*self, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
      if (parts.size() != 3) continue;
      if (parts[0] == "0" && parts[1].empty()) v2_path = std::string(parts[2]);
      for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
        if (controller == "memory") v1_path = std::string(parts[2]);
      }
    }
  }
  ApplyCgroupLimits(CgroupDirs(sources.cgroup_root, v2_path), kCgroupV2, &host.total_memory_bytes,
                    &host.free_memory_bytes);
  ApplyCgroupLimits(CgroupDirs(sources.cgroup_root + "/memory", v1_path), kCgroupV1,
                    &host.total_memory_bytes, &host.free_memory_bytes);
  host.free_memory_bytes = std::min(host.free_memory_bytes, host.total_memory_bytes);
  return host;
}

double MeasureReadBandwidth(int threads, uint64_t bytes, double seconds) {
  threads = std::max(threads, 1);
  const size_t per_thread = static_cast<size_t>(bytes / sizeof(uint64_t)) / threads;
  if (per_thread == 0) return 0;
  const size_t words = per_thread * threads;
  std::unique_ptr<uint64_t[]> buffer(new (std::nothrow) uint64_t[words]);
  if (buffer == nullptr) return 0;

  std::vector<uint64_t> sums(threads, 0);
  auto run_pass = [&](bool fill) {
    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        uint64_t* slice = buffer.get() + t * per_thread;
        if (fill) {
          // Each thread touches its own slice first, so on a NUMA host the
          // pages land near the thread that reads them.
          for (size_t i = 0; i < per_thread; ++i) slice[i] = i * 0x9E3779B97F4A7C15ull + t;
        } else {
          sums[t] = SumWords(slice, per_thread);
        }
      });
    }
    for (std::thread& w : workers) w.join();
  };
  run_pass(/*fill=*/true);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  double best = 0;
  uint64_t checksum = 0;
  // At least two passes: the first may still be paying for TLB misses.
  for (int pass = 0;
       pass < 2 || std::chrono::duration<double>(Clock::now() - start).count() < seconds; ++pass) {
    const auto t0 = Clock::now();
    run_pass(/*fill=*/false);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    for (uint64_t s : sums) checksum ^= s;
    if (dt > 0) best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / dt);
    if (pass >= 10000) break;
  }
  g_bandwidth_sink = g_bandwidth_sink ^ checksum;
  return best;
}

}  // namespace tessera
