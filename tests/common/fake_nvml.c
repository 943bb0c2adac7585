/* A stand-in for the driver's libnvidia-ml.so.1 with two made-up GPUs, for
 * gpu_telemetry_test and metrics_test. It is compiled against NVIDIA's own
 * nvml.h (the nvidia-nvml-dev Python package, which scripts/setup.sh
 * installs), so its structures and prototypes are NVML's, while
 * common/metrics/gpu_telemetry.cc loads it through its own declarations:
 * a layout that differs shows as wrong values in the test.
 *
 * GPU 0 "Fake H200": 141 GiB, 10 GiB used, 42 % busy, 55 C, 300.5 W,
 *   3 uncorrected ECC errors, one Xid 79 event (the first wait returns it).
 * GPU 1 "Fake H100": 80 GiB, 1 GiB used, 7 % busy, 40 C, 120 W, ECC not
 *   supported, no events. */
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <nvml.h>
#include <string.h>
#include <time.h>

struct nvmlDevice_st {
  int index;
};
struct nvmlEventSet_st {
  int waits;
};

static struct nvmlDevice_st devices[2] = {{0}, {1}};
static struct nvmlEventSet_st event_set = {0};

nvmlReturn_t nvmlInit_v2(void) { return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }
const char* nvmlErrorString(nvmlReturn_t result) {
  return result == NVML_SUCCESS ? "Success" : "Fake error";
}
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 2;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (index > 1) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &devices[index];
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  const char* n = device->index == 0 ? "Fake H200" : "Fake H100";
  if (length < strlen(n) + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  strcpy(name, n);
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  const unsigned long long gib = 1ULL << 30;
  memory->total = device->index == 0 ? 141 * gib : 80 * gib;
  memory->used = device->index == 0 ? 10 * gib : 1 * gib;
  memory->free = memory->total - memory->used;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* u) {
  u->gpu = device->index == 0 ? 42 : 7;
  u->memory = 3;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned int* temp) {
  if (sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  *temp = device->index == 0 ? 55 : 40;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* milliwatts) {
  *milliwatts = device->index == 0 ? 300500 : 120000;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t type,
                                         nvmlEccCounterType_t counter,
                                         unsigned long long* count) {
  if (device->index == 1) return NVML_ERROR_NOT_SUPPORTED;
  if (type != NVML_MEMORY_ERROR_TYPE_UNCORRECTED || counter != NVML_VOLATILE_ECC) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  *count = 3;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  *set = &event_set;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types,
                                      nvmlEventSet_t set) {
  (void)set;
  if (device->index == 1) return NVML_ERROR_NOT_SUPPORTED;
  return types == nvmlEventTypeXidCriticalError ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutms) {
  if (set->waits++ == 0) {
    memset(data, 0, sizeof(*data));
    data->device = &devices[0];
    data->eventType = nvmlEventTypeXidCriticalError;
    data->eventData = 79;
    data->gpuInstanceId = 0xFFFFFFFFu;
    data->computeInstanceId = 0xFFFFFFFFu;
    return NVML_SUCCESS;
  }
  struct timespec ts = {(time_t)(timeoutms / 1000), (long)(timeoutms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  return NVML_ERROR_TIMEOUT;
}
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  (void)set;
  return NVML_SUCCESS;
}
