#include "common/metrics/gpu_telemetry.h"

#include <dlfcn.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/metrics/collector.h"

namespace tessera {
namespace {

// NVML's C interface as far as this file uses it, declared here (not from
// nvml.h) so that no NVML header is needed to build. The layouts are NVML's
// (nvml.h of CUDA 12 and 13); tests/common/fake_nvml.c is compiled against
// the real nvml.h and loaded through these declarations, so a mismatch
// fails gpu_telemetry_test.
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
using nvmlEventSet_t = void*;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_TIMEOUT = 10;
constexpr int NVML_TEMPERATURE_GPU = 0;
constexpr int NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1;
constexpr int NVML_VOLATILE_ECC = 0;
constexpr unsigned long long nvmlEventTypeXidCriticalError = 0x8ULL;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
struct nvmlEventData_t {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

}  // namespace

struct GpuTelemetry::Api {
  nvmlReturn_t (*Init)() = nullptr;
  nvmlReturn_t (*Shutdown)() = nullptr;
  const char* (*ErrorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*GetCount)(unsigned int*) = nullptr;
  nvmlReturn_t (*GetHandleByIndex)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*GetName)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*GetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*GetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*GetTemperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*GetPowerUsage)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*GetTotalEccErrors)(nvmlDevice_t, int, int, unsigned long long*) = nullptr;
  nvmlReturn_t (*EventSetCreate)(nvmlEventSet_t*) = nullptr;
  nvmlReturn_t (*RegisterEvents)(nvmlDevice_t, unsigned long long, nvmlEventSet_t) = nullptr;
  nvmlReturn_t (*EventSetWait)(nvmlEventSet_t, nvmlEventData_t*, unsigned int) = nullptr;
  nvmlReturn_t (*EventSetFree)(nvmlEventSet_t) = nullptr;
};

std::string GpuTelemetry::DefaultLibrary() {
  const char* env = std::getenv("TESSERA_NVML_LIBRARY");
  return env != nullptr && *env != '\0' ? env : "libnvidia-ml.so.1";
}

std::shared_ptr<GpuTelemetry> GpuTelemetry::Open(const std::string& library,
                                                 std::string* why_not) {
  std::shared_ptr<GpuTelemetry> t(new GpuTelemetry());
  t->library_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (t->library_ == nullptr) {
    const char* e = dlerror();
    *why_not = absl::StrCat("no GPU telemetry: ", library, " cannot be loaded (",
                            e != nullptr ? e : "unknown error",
                            "); this host has no NVIDIA driver, or set TESSERA_NVML_LIBRARY");
    return nullptr;
  }
  t->api_ = std::make_unique<Api>();
  Api& a = *t->api_;
  bool missing = false;
  std::string missing_name;
  auto resolve = [&](auto*& fn, const char* name, bool required) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(t->library_, name));
    if (fn == nullptr && required && !missing) {
      missing = true;
      missing_name = name;
    }
  };
  resolve(a.Init, "nvmlInit_v2", true);
  resolve(a.Shutdown, "nvmlShutdown", true);
  resolve(a.ErrorString, "nvmlErrorString", true);
  resolve(a.GetCount, "nvmlDeviceGetCount_v2", true);
  resolve(a.GetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2", true);
  resolve(a.GetName, "nvmlDeviceGetName", true);
  resolve(a.GetMemoryInfo, "nvmlDeviceGetMemoryInfo", true);
  resolve(a.GetUtilizationRates, "nvmlDeviceGetUtilizationRates", false);
  resolve(a.GetTemperature, "nvmlDeviceGetTemperature", false);
  resolve(a.GetPowerUsage, "nvmlDeviceGetPowerUsage", false);
  resolve(a.GetTotalEccErrors, "nvmlDeviceGetTotalEccErrors", false);
  resolve(a.EventSetCreate, "nvmlEventSetCreate", false);
  resolve(a.RegisterEvents, "nvmlDeviceRegisterEvents", false);
  resolve(a.EventSetWait, "nvmlEventSetWait_v2", false);
  resolve(a.EventSetFree, "nvmlEventSetFree", false);
  if (missing) {
    *why_not = absl::StrCat("no GPU telemetry: ", library, " has no ", missing_name);
    return nullptr;  // the destructor closes the library
  }
  if (const nvmlReturn_t r = a.Init(); r != NVML_SUCCESS) {
    *why_not = absl::StrCat("no GPU telemetry: nvmlInit: ", a.ErrorString(r));
    return nullptr;
  }
  t->initialized_ = true;
  unsigned int count = 0;
  if (const nvmlReturn_t r = a.GetCount(&count); r != NVML_SUCCESS || count == 0) {
    *why_not = absl::StrCat("no GPU telemetry: ",
                            r != NVML_SUCCESS ? absl::StrCat("nvmlDeviceGetCount: ", a.ErrorString(r))
                                              : std::string("NVML sees no GPU"));
    return nullptr;
  }
  for (unsigned int i = 0; i < count; ++i) {
    Device d;
    d.index = i;
    if (a.GetHandleByIndex(i, &d.handle) != NVML_SUCCESS) continue;
    char name[96] = {0};
    if (a.GetName(d.handle, name, sizeof(name) - 1) == NVML_SUCCESS) d.name = name;
    d.xid_errors = std::make_unique<std::atomic<uint64_t>>(0);
    t->devices_.push_back(std::move(d));
  }
  // Xid critical errors arrive as events; a device that cannot register
  // them (not supported) is simply not watched.
  if (a.EventSetCreate != nullptr && a.RegisterEvents != nullptr && a.EventSetWait != nullptr &&
      a.EventSetCreate(&t->events_) == NVML_SUCCESS) {
    int watched = 0;
    for (const Device& d : t->devices_) {
      watched += a.RegisterEvents(d.handle, nvmlEventTypeXidCriticalError, t->events_) ==
                 NVML_SUCCESS;
    }
    if (watched > 0) {
      t->xid_thread_ = std::thread([p = t.get()] { p->WatchXid(); });
    } else {
      a.EventSetFree(t->events_);
      t->events_ = nullptr;
    }
  }
  return t;
}

GpuTelemetry::~GpuTelemetry() {
  stop_ = true;
  if (xid_thread_.joinable()) xid_thread_.join();  // its waits time out within 500 ms
  if (api_ != nullptr) {
    if (events_ != nullptr && api_->EventSetFree != nullptr) api_->EventSetFree(events_);
    if (initialized_) api_->Shutdown();
  }
  if (library_ != nullptr) dlclose(library_);
}

void GpuTelemetry::WatchXid() {
  while (!stop_.load()) {
    nvmlEventData_t e{};
    const nvmlReturn_t r = api_->EventSetWait(events_, &e, 500);
    if (r == NVML_ERROR_TIMEOUT) continue;
    if (r != NVML_SUCCESS) return;  // the driver went away: stop watching
    if ((e.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
    for (const Device& d : devices_) {
      if (d.handle == e.device) d.xid_errors->fetch_add(1);
    }
  }
}

std::vector<prometheus::MetricFamily> GpuTelemetry::Collect() const {
  const Api& a = *api_;
  FamilyBuilder info = FamilyBuilder::Gauge("tessera_gpu_info", "1 per GPU, labelled with its name.");
  FamilyBuilder used = FamilyBuilder::Gauge("tessera_gpu_memory_used_bytes",
                                            "Device memory in use (NVML: reserved and allocated).");
  FamilyBuilder total =
      FamilyBuilder::Gauge("tessera_gpu_memory_total_bytes", "Device memory in all.");
  FamilyBuilder util = FamilyBuilder::Gauge(
      "tessera_gpu_utilization_ratio",
      "Fraction of the last sample period in which a kernel ran on the GPU, 0 to 1.");
  FamilyBuilder temp =
      FamilyBuilder::Gauge("tessera_gpu_temperature_celsius", "GPU die temperature.");
  FamilyBuilder power = FamilyBuilder::Gauge("tessera_gpu_power_watts", "Board power draw.");
  FamilyBuilder ecc = FamilyBuilder::Counter(
      "tessera_gpu_ecc_errors_total", "Uncorrected ECC errors since the driver loaded.");
  FamilyBuilder xid = FamilyBuilder::Counter(
      "tessera_gpu_xid_errors_total", "Xid critical error events since this process started.");
  for (const Device& d : devices_) {
    const FamilyBuilder::Labels l{{"gpu", absl::StrCat(d.index)}};
    info.Add({{"gpu", absl::StrCat(d.index)}, {"name", d.name}}, 1);
    nvmlMemory_t m{};
    if (a.GetMemoryInfo(d.handle, &m) == NVML_SUCCESS) {
      used.Add(l, static_cast<double>(m.used));
      total.Add(l, static_cast<double>(m.total));
    }
    nvmlUtilization_t u{};
    if (a.GetUtilizationRates != nullptr && a.GetUtilizationRates(d.handle, &u) == NVML_SUCCESS) {
      util.Add(l, u.gpu / 100.0);
    }
    unsigned int celsius = 0;
    if (a.GetTemperature != nullptr &&
        a.GetTemperature(d.handle, NVML_TEMPERATURE_GPU, &celsius) == NVML_SUCCESS) {
      temp.Add(l, celsius);
    }
    unsigned int milliwatts = 0;
    if (a.GetPowerUsage != nullptr && a.GetPowerUsage(d.handle, &milliwatts) == NVML_SUCCESS) {
      power.Add(l, milliwatts / 1000.0);
    }
    unsigned long long errors = 0;
    if (a.GetTotalEccErrors != nullptr &&
        a.GetTotalEccErrors(d.handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC,
                            &errors) == NVML_SUCCESS) {
      ecc.Add(l, static_cast<double>(errors));
    }
    if (events_ != nullptr) xid.Add(l, static_cast<double>(d.xid_errors->load()));
  }
  std::vector<prometheus::MetricFamily> out;
  for (FamilyBuilder* f : {&info, &used, &total, &util, &temp, &power, &ecc, &xid}) {
    f->AppendTo(&out);
  }
  return out;
}

}  // namespace tessera
