#include "common/host_probe.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::tessera::testing::IsOk;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kGiB = 1ull << 30;

constexpr char kMeminfo[] =
    "MemTotal:       24684100 kB\n"
    "MemFree:         1234567 kB\n"
    "MemAvailable:   24258272 kB\n"
    "Active(file):     300000 kB\n"
    "HugePages_Total:       7\n"
    "Hugepagesize:       2048 kB\n"
    "Broken:              abc kB\n";

TEST(ParseMeminfoFieldTest, ReadsKilobyteValuesAsBytes) {
  EXPECT_EQ(*ParseMeminfoField(kMeminfo, "MemTotal"), 25276518400ull);  // 24684100 * 1024
  EXPECT_EQ(*ParseMeminfoField(kMeminfo, "MemAvailable"), 24840470528ull);
  EXPECT_EQ(*ParseMeminfoField(kMeminfo, "Active(file)"), 307200000ull);
  EXPECT_EQ(*ParseMeminfoField(kMeminfo, "Hugepagesize"), 2097152ull);
}

TEST(ParseMeminfoFieldTest, ValueWithoutUnitIsTakenAsIs) {
  EXPECT_EQ(*ParseMeminfoField(kMeminfo, "HugePages_Total"), 7u);
}

TEST(ParseMeminfoFieldTest, MissingKeyIsNotFoundNamingIt) {
  EXPECT_THAT(ParseMeminfoField(kMeminfo, "SwapTotal"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("SwapTotal")));
  // A prefix of a key is not the key.
  EXPECT_THAT(ParseMeminfoField(kMeminfo, "Mem"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("Mem")));
  EXPECT_THAT(ParseMeminfoField("", "MemTotal"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("MemTotal")));
}

TEST(ParseMeminfoFieldTest, NonNumericValueIsInvalidArgument) {
  EXPECT_THAT(ParseMeminfoField(kMeminfo, "Broken"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Broken")));
}

// A scratch directory for fixture files, removed at the end of the test.
class HostProbeFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/host_probe." + std::to_string(::getpid()) + "." +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/cg");
    sources_.meminfo_path = dir_ + "/meminfo";
    sources_.self_cgroup_path = dir_ + "/self_cgroup";
    sources_.cgroup_root = dir_ + "/cg";
    Write("meminfo", "MemTotal: 16777216 kB\nMemAvailable: 12582912 kB\n");  // 16 GiB, 12 GiB
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::path p = dir_ + "/" + rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  std::string dir_;
  HostProbeSources sources_;
};

TEST_F(HostProbeFixtureTest, NoCgroupFilesMeansMeminfoValues) {
  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, 16 * kGiB);
  EXPECT_EQ(h.free_memory_bytes, 12 * kGiB);
  EXPECT_EQ(h.device_type, "cpu");
  EXPECT_EQ(h.device_count, 1);
  EXPECT_GE(h.threads, 1);
  EXPECT_EQ(h.read_bandwidth_bytes_per_s, 0);
  EXPECT_TRUE(h.cpu_isa.empty());
}

TEST_F(HostProbeFixtureTest, CgroupV2LimitsOfCgroupAndAncestorsApply) {
  Write("self_cgroup", "0::/worker/a\n");
  // Own cgroup: 4 GiB limit, 3 GiB used of which 1 GiB is reclaimable cache.
  Write("cg/worker/a/memory.max", "4294967296\n");
  Write("cg/worker/a/memory.current", "3221225472\n");
  Write("cg/worker/a/memory.stat", "anon 123\ninactive_file 1073741824\nactive_file 5\n");
  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, 4 * kGiB);
  EXPECT_EQ(h.free_memory_bytes, 2 * kGiB);

  // A tighter parent: 3 GiB limit, 2.5 GiB used, no stat file.
  Write("cg/worker/memory.max", "3221225472\n");
  Write("cg/worker/memory.current", "2684354560\n");
  Write("cg/memory.max", "max\n");  // the root: unlimited
  ASSERT_OK_AND_ASSIGN(h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, 3 * kGiB);
  EXPECT_EQ(h.free_memory_bytes, kGiB / 2);
}

TEST_F(HostProbeFixtureTest, CgroupOverLimitReportsZeroFree) {
  Write("self_cgroup", "0::/\n");
  Write("cg/memory.max", "1073741824\n");
  Write("cg/memory.current", "2147483648\n");
  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, kGiB);
  EXPECT_EQ(h.free_memory_bytes, 0u);
}

TEST_F(HostProbeFixtureTest, CgroupV1MemoryHierarchyApplies) {
  Write("self_cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n");
  // v1's "unlimited" is a huge number, which must not count as a limit.
  Write("cg/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
  Write("cg/memory/docker/abc/memory.usage_in_bytes", "100\n");
  Write("cg/memory/docker/memory.limit_in_bytes", "8589934592\n");
  Write("cg/memory/docker/memory.usage_in_bytes", "1610612736\n");
  Write("cg/memory/docker/memory.stat", "inactive_file 1\ntotal_inactive_file 536870912\n");
  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, 8 * kGiB);
  EXPECT_EQ(h.free_memory_bytes, 7 * kGiB);
}

TEST_F(HostProbeFixtureTest, FreeNeverExceedsTotal) {
  // A cgroup limit below MemAvailable but with nothing used.
  Write("self_cgroup", "0::/w\n");
  Write("cg/w/memory.max", "2147483648\n");
  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost(sources_));
  EXPECT_EQ(h.total_memory_bytes, 2 * kGiB);
  EXPECT_EQ(h.free_memory_bytes, 2 * kGiB);
}

TEST_F(HostProbeFixtureTest, MissingMeminfoIsNotFoundNamingTheFile) {
  sources_.meminfo_path = dir_ + "/no_such_meminfo";
  EXPECT_THAT(ProbeHost(sources_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no_such_meminfo")));
}

TEST_F(HostProbeFixtureTest, MeminfoWithoutMemAvailableIsNotFoundNamingKeyAndFile) {
  Write("meminfo", "MemTotal: 16777216 kB\nMemFree: 1 kB\n");
  EXPECT_THAT(ProbeHost(sources_),
              StatusIs(absl::StatusCode::kNotFound,
                       ::testing::AllOf(HasSubstr("MemAvailable"), HasSubstr(dir_ + "/meminfo"))));
}

// Reads a field of the real /proc/meminfo with plain stream parsing, in kB.
uint64_t ProcMeminfoKb(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  uint64_t kb = 0;
  while (in >> name >> kb) {
    std::getline(in, unit);
    if (name == key + ":") return kb;
  }
  return 0;
}

TEST(ProbeHostTest, RealHostMatchesProcMeminfo) {
  if (!std::filesystem::exists("/proc/meminfo")) GTEST_SKIP() << "no /proc/meminfo";
  const uint64_t mem_total = ProcMeminfoKb("MemTotal") * 1024;
  const uint64_t mem_available = ProcMeminfoKb("MemAvailable") * 1024;
  ASSERT_GT(mem_total, 0u);

  ASSERT_OK_AND_ASSIGN(HostDevices h, ProbeHost());
  EXPECT_GT(h.free_memory_bytes, 0u);
  EXPECT_GE(h.total_memory_bytes, h.free_memory_bytes);
  EXPECT_LE(h.total_memory_bytes, mem_total);  // lower only under a cgroup limit
  EXPECT_GE(h.threads, 1);

  // Without cgroups, the exact meminfo numbers (MemAvailable drifts a little
  // between the two reads).
  HostProbeSources no_cgroups;
  no_cgroups.self_cgroup_path = "/nonexistent/self_cgroup";
  no_cgroups.cgroup_root = "/nonexistent/cgroup";
  ASSERT_OK_AND_ASSIGN(HostDevices plain, ProbeHost(no_cgroups));
  EXPECT_EQ(plain.total_memory_bytes, mem_total);
  EXPECT_NEAR(static_cast<double>(plain.free_memory_bytes), static_cast<double>(mem_available),
              0.05 * mem_total);
  std::printf("host: %d threads, total %.2f GiB, free %.2f GiB (cgroup-aware: %.2f / %.2f GiB)\n",
              plain.threads, plain.total_memory_bytes / double(kGiB),
              plain.free_memory_bytes / double(kGiB), h.total_memory_bytes / double(kGiB),
              h.free_memory_bytes / double(kGiB));
}

TEST(MeasureReadBandwidthTest, SmallBufferGivesPositiveBandwidth) {
  const double one = MeasureReadBandwidth(1, 16u << 20, 0.05);
  const double two = MeasureReadBandwidth(2, 16u << 20, 0.05);
  std::printf("read bandwidth, 16 MiB buffer: 1 thread %.2f GB/s, 2 threads %.2f GB/s\n", one / 1e9,
              two / 1e9);
  EXPECT_GT(one, 0);
  EXPECT_GT(two, 0);
  // A 16 MiB pass cannot honestly take less than a microsecond (16 TB/s).
  EXPECT_LT(one, 16e12);
}

TEST(MeasureReadBandwidthTest, ZeroThreadsMeansOneAndTinyBufferGivesZero) {
  EXPECT_GT(MeasureReadBandwidth(0, 1u << 20, 0.01), 0);
  EXPECT_EQ(MeasureReadBandwidth(4, 16, 0.01), 0);
}

}  // namespace
}  // namespace tessera
