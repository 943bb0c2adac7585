// GPU telemetry through NVML loaded at run time (common/metrics/
// gpu_telemetry.h), against tests/common/fake_nvml.c: a library built from
// NVIDIA's own nvml.h with two made-up GPUs of known values, so the
// loader's own declarations of NVML's structures are checked against the
// real header's layout. Without NVML the collector is absent and says why.
#include "common/metrics/gpu_telemetry.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/time/clock.h"
#include "common/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

// family -> "gpu" label -> value.
std::map<std::string, std::map<std::string, double>> Values(const GpuTelemetry& t) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const prometheus::MetricFamily& f : t.Collect()) {
    for (const prometheus::ClientMetric& m : f.metric) {
      std::string gpu;
      for (const auto& l : m.label) {
        if (l.name == "gpu") gpu = l.value;
      }
      out[f.name][gpu] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return out;
}

TEST(GpuTelemetryTest, ReadsEveryDeviceThroughNvmlsLayout) {
  std::string why;
  std::shared_ptr<GpuTelemetry> t = GpuTelemetry::Open(FAKE_NVML_PATH, &why);
  ASSERT_NE(t, nullptr) << why;
  EXPECT_EQ(t->devices(), 2);
  // The fake reports its one Xid event on the first wait; the watcher
  // thread counts it.
  for (int i = 0; i < 50 && Values(*t)["tessera_gpu_xid_errors_total"]["0"] < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  auto v = Values(*t);
  const double gib = 1ull << 30;
  EXPECT_EQ(v["tessera_gpu_memory_total_bytes"]["0"], 141 * gib);
  EXPECT_EQ(v["tessera_gpu_memory_used_bytes"]["0"], 10 * gib);
  EXPECT_EQ(v["tessera_gpu_memory_total_bytes"]["1"], 80 * gib);
  EXPECT_EQ(v["tessera_gpu_memory_used_bytes"]["1"], 1 * gib);
  EXPECT_DOUBLE_EQ(v["tessera_gpu_utilization_ratio"]["0"], 0.42);
  EXPECT_DOUBLE_EQ(v["tessera_gpu_utilization_ratio"]["1"], 0.07);
  EXPECT_EQ(v["tessera_gpu_temperature_celsius"]["0"], 55);
  EXPECT_DOUBLE_EQ(v["tessera_gpu_power_watts"]["0"], 300.5);
  EXPECT_DOUBLE_EQ(v["tessera_gpu_power_watts"]["1"], 120);
  EXPECT_EQ(v["tessera_gpu_ecc_errors_total"]["0"], 3);
  EXPECT_EQ(v["tessera_gpu_ecc_errors_total"].count("1"), 0u) << "GPU 1 has no ECC";
  EXPECT_EQ(v["tessera_gpu_xid_errors_total"]["0"], 1);
  EXPECT_EQ(v["tessera_gpu_xid_errors_total"]["1"], 0);
  const std::string text = RenderMetrics({t});
  EXPECT_THAT(text, HasSubstr("tessera_gpu_info{gpu=\"0\",name=\"Fake H200\"} 1"));
  EXPECT_THAT(text, HasSubstr("tessera_gpu_info{gpu=\"1\",name=\"Fake H100\"} 1"));
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    const std::string file = ::testing::TempDir() + "/gpu_metrics.txt";
    std::ofstream(file) << text;
    EXPECT_EQ(std::system(("promtool check metrics < '" + file + "'").c_str()), 0) << text;
  }
}

TEST(GpuTelemetryTest, WithoutNvmlThereIsNoCollectorAndOneReason) {
  std::string why;
  EXPECT_EQ(GpuTelemetry::Open("/nonexistent/libnvidia-ml.so.1", &why), nullptr);
  EXPECT_THAT(why, HasSubstr("no GPU telemetry: /nonexistent/libnvidia-ml.so.1 cannot be loaded"));
  // A library that is not NVML at all.
  why.clear();
  EXPECT_EQ(GpuTelemetry::Open("libm.so.6", &why), nullptr);
  EXPECT_THAT(why, HasSubstr("has no nvmlInit_v2"));
}

TEST(GpuTelemetryTest, TheLibraryComesFromTheEnvironment) {
  setenv("TESSERA_NVML_LIBRARY", "/x/libnvml-test.so", 1);
  EXPECT_EQ(GpuTelemetry::DefaultLibrary(), "/x/libnvml-test.so");
  unsetenv("TESSERA_NVML_LIBRARY");
  EXPECT_EQ(GpuTelemetry::DefaultLibrary(), "libnvidia-ml.so.1");
}

}  // namespace
}  // namespace tessera
