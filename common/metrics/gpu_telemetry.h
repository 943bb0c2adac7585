// GPU telemetry for a worker's /metrics, read from NVML (the driver's
// management library), which is loaded at run time with dlopen so that a
// binary built with or without CUDA starts on hosts without a GPU driver.
//
// Per device (label gpu="<NVML index>"): tessera_gpu_info{gpu,name},
// memory used and total (bytes), utilisation (0 to 1), temperature
// (Celsius), power (watts), uncorrected ECC errors since the driver loaded,
// and Xid critical errors seen since the worker started (a thread waits on
// NVML's event set for them). A value a device does not support (ECC on
// most consumer cards) is left out for that device.
//
// GpuTelemetry::Open loads `library` ($TESSERA_NVML_LIBRARY, else
// libnvidia-ml.so.1). Without it, or without a device, it returns null and
// says why in `why_not` (the worker logs that once; the metrics are then
// absent).
//
// Thread-safety: Collect from any thread (NVML is thread-safe); the Xid
// counts are atomics.
#ifndef TESSERA_COMMON_METRICS_GPU_TELEMETRY_H_
#define TESSERA_COMMON_METRICS_GPU_TELEMETRY_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace tessera {

class GpuTelemetry final : public prometheus::Collectable {
 public:
  // The NVML library to load: $TESSERA_NVML_LIBRARY, else the driver's.
  static std::string DefaultLibrary();

  static std::shared_ptr<GpuTelemetry> Open(const std::string& library, std::string* why_not);
  ~GpuTelemetry() override;
  GpuTelemetry(const GpuTelemetry&) = delete;
  GpuTelemetry& operator=(const GpuTelemetry&) = delete;

  int devices() const { return static_cast<int>(devices_.size()); }
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Api;  // the NVML entry points, resolved by dlsym
  struct Device {
    unsigned int index = 0;  // NVML's
    void* handle = nullptr;  // nvmlDevice_t
    std::string name;
    std::unique_ptr<std::atomic<uint64_t>> xid_errors;
  };
  GpuTelemetry() = default;
  void WatchXid();

  void* library_ = nullptr;  // dlopen handle
  bool initialized_ = false;  // nvmlInit succeeded: nvmlShutdown is due
  std::unique_ptr<Api> api_;
  std::vector<Device> devices_;
  void* events_ = nullptr;  // nvmlEventSet_t; null: Xid events not available
  std::atomic<bool> stop_{false};
  std::thread xid_thread_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_GPU_TELEMETRY_H_
