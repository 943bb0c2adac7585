// tessera-worker: serves one pipeline stage of a model for a coordinator.
//
// It maps the model file, joins the coordinator with its devices and the
// file's identity, loads the layer range it is assigned (only that range's
// bytes are read), and serves the Stage gRPC service, grpc.health.v1 (SERVING
// once its stage is loaded) and server reflection.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/byte_size.h"
#include "common/safetensors/model_source.h"
#include "common/dashed_flags.h"
#include "common/log.h"
#include "common/metrics/gpu_telemetry.h"
#include "common/metrics/metrics_server.h"
#include "common/shutdown_signal.h"
#include "common/gguf/gguf_file.h"
#include "common/host_probe.h"
#include "common/model_config.h"
#include "engine/step_runner_factory.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_listen.h"
#include "proto/node_security.h"
#include "grpcpp/health_check_service_interface.h"
#include "kernels/cpu/isa.h"
#include "worker/control_session.h"
#include "worker/stage_service.h"
#include "worker/worker_metrics.h"

ABSL_FLAG(std::string, coordinator, "", "host:port of the coordinator (required).");
ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "host:port for this worker's Stage service; port 0 picks a free one.");
ABSL_FLAG(std::string, advertise, "",
          "host:port the coordinator and other stages use to reach this worker; default: the "
          "listen host with the bound port (set it when listening on 0.0.0.0).");
ABSL_FLAG(std::string, model, "",
          "The GGUF model file or Hugging Face checkpoint directory (required; the same "
          "model as the coordinator's, checked by content hash).");
ABSL_FLAG(int32_t, threads, 0, "Kernel threads; 0 = all hardware threads.");
ABSL_FLAG(std::string, memory_limit, "",
          "Memory this worker offers for weights + KV cache + activations, e.g. 2GiB; "
          "default: the host's available memory.");
ABSL_FLAG(std::string, join_secret, "",
          "The cluster's join secret (required without TLS). Visible to every local user in "
          "the process list: prefer --join-secret-file.");
ABSL_FLAG(std::string, join_secret_file, "",
          "A file (mode 0600) whose first line is the cluster's join secret.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this worker, signed by --tls-ca; its Common Name names the worker "
          "and its subject alternative names must hold the --advertise host. With --tls-key and "
          "--tls-ca: TLS on the Stage port (peers must present certificates from the CA) and to "
          "the coordinator.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_ca, "", "PEM certificate of the cluster CA.");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext on a --listen or --metrics-listen address other hosts can reach "
          "(refused otherwise without TLS); the join secret still guards the Stage port.");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for this worker's Prometheus metrics (GET /metrics): steps, step times, "
          "tokens, bytes in and out, KV pool, and GPU telemetry where NVML is. HTTPS with "
          "--tls-cert; without TLS an address other hosts can reach needs --insecure. Empty = "
          "off; port 0 picks a free one.");
ABSL_FLAG(std::string, log_format, "text",
          "text: one line per event (time, level, program, component, message); json: one JSON "
          "object per line with time (UTC), level, program, component, request_id (on a "
          "request's lines) and message, for log shippers.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log lines written to stderr: debug, info, warning or error.");
ABSL_FLAG(int32_t, tp, 1,
          "Tensor-parallel degree: split the assigned layers over this many ranks, each with its "
          "shard of the weights and its share of the KV heads. On the CPU the ranks are threads "
          "of this process with max(1, threads / tp) kernel threads each; with --device cuda:N "
          "they are GPUs N..N+tp-1 joined by NCCL (a --device list sets it instead). Must "
          "divide the model's KV heads and n_ff.");
ABSL_FLAG(uint64_t, fault_stall_after_steps, 0,
          "Failover drills only: the Nth step this worker runs stalls for 20 s while its "
          "heartbeats go on, as a stage stuck in a kernel would; 0 = never.");
ABSL_FLAG(std::string, device, "cpu",
          "Where the assigned layers run: cpu, cuda (= cuda:0), cuda:N, or cuda:N,M,... for "
          "tensor parallelism over those GPUs (one rank each, all-reduces over NCCL). A CUDA "
          "stage takes F32, F16, BF16, Q8_0 or Q4_K weights and offers the planner the GPUs' "
          "free memory (cudaMemGetInfo) and measured copy bandwidth instead of the host's; "
          "without a listed device the worker exits at start.");

namespace tessera {
namespace {

const Logger kLog("main");


int Main() {
  // Before any thread starts, so that every thread inherits the mask.
  BlockShutdownSignals();
  if (absl::Status s = InitLogging("tessera-worker", absl::GetFlag(FLAGS_log_level),
                                  absl::GetFlag(FLAGS_log_format)); !s.ok()) {
    return ExitWithError(s);
  }
  const std::string model_path = absl::GetFlag(FLAGS_model);
  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  if (model_path.empty() || coordinator.empty()) {
    return ExitWithError(absl::InvalidArgumentError("--model and --coordinator are required"));
  }
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) return ExitWithError(absl::InvalidArgumentError("--threads must be >= 0"));
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  int tp = absl::GetFlag(FLAGS_tp);
  // Refused here, before listening or joining: a worker that cannot run
  // its stage must not be planned into a pipeline. A CUDA device list sets
  // the degree the planner is told.
  absl::StatusOr<Device> device = ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return ExitWithError(device.status());
  if (absl::Status s = ResolveTensorParallel(&*device, &tp); !s.ok()) return ExitWithError(s);
  if (absl::Status usable = CheckDevice(*device, tp); !usable.ok()) return ExitWithError(usable);
  uint64_t memory_limit = 0;
  if (!absl::GetFlag(FLAGS_memory_limit).empty()) {
    absl::StatusOr<uint64_t> m = ParseByteSize(absl::GetFlag(FLAGS_memory_limit));
    if (!m.ok()) return ExitWithError(m.status());
    memory_limit = *m;
  }

  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenModelFile(model_path);
  if (!file.ok()) return ExitWithError(file.status());
  absl::StatusOr<ModelConfig> config = ModelConfigFromGguf(**file);
  if (!config.ok()) return ExitWithError(config.status());

  NodeSecurityOptions security_options;
  security_options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  security_options.tls_key = absl::GetFlag(FLAGS_tls_key);
  security_options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  security_options.join_secret = absl::GetFlag(FLAGS_join_secret);
  security_options.join_secret_file = absl::GetFlag(FLAGS_join_secret_file);
  security_options.insecure = absl::GetFlag(FLAGS_insecure);
  absl::StatusOr<NodeSecurity> security = NodeSecurity::Load(security_options);
  if (!security.ok()) return ExitWithError(security.status());
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (absl::Status s = security->CheckListener(listen, "--listen"); !s.ok()) {
    return ExitWithError(s);
  }

  WorkerState state;
  state.security = &*security;
  state.fault_stall_step = absl::GetFlag(FLAGS_fault_stall_after_steps);
  WorkerMetrics metrics(&state, device->ToString());
  state.on_step_ran = [&metrics](double seconds) { metrics.StepRan(seconds); };
  std::unique_ptr<MetricsServer> metrics_server;
  if (const std::string address = absl::GetFlag(FLAGS_metrics_listen); !address.empty()) {
    if (absl::Status s = security->CheckListener(address, "--metrics-listen"); !s.ok()) {
      return ExitWithError(s);
    }
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables = metrics.collectables();
    // GPU telemetry where the driver's NVML is (also on a CPU worker of a
    // GPU host); one line says why not otherwise.
    std::string no_gpu;
    if (std::shared_ptr<GpuTelemetry> gpu =
            GpuTelemetry::Open(GpuTelemetry::DefaultLibrary(), &no_gpu)) {
      kLog.Info("GPU telemetry through NVML: %d device(s)", gpu->devices());
      collectables.push_back(std::move(gpu));
    } else {
      kLog.Info("%s", no_gpu);
    }
    absl::StatusOr<std::unique_ptr<MetricsServer>> started_metrics = MetricsServer::Start(
        address, std::move(collectables), security->cert_pem(), security->key_pem());
    if (!started_metrics.ok()) return ExitWithError(started_metrics.status());
    metrics_server = *std::move(started_metrics);
    kLog.Info("metrics listening on %s (GET /metrics%s)", metrics_server->address(),
              security->tls() ? ", HTTPS" : "");
  }
  StageService stage(&state);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(&stage);
  absl::StatusOr<std::unique_ptr<grpc::Server>> started =
      StartExclusiveServer(&builder, listen, "--listen",
                           security->ServerCredentials(/*require_client_cert=*/true), &port);
  if (!started.ok()) return ExitWithError(started.status());
  std::unique_ptr<grpc::Server> server = *std::move(started);
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);

  std::string advertise = absl::GetFlag(FLAGS_advertise);
  if (advertise.empty()) {
    std::string host = listen.substr(0, listen.rfind(':'));
    if (host == "0.0.0.0" || host == "[::]" || host.empty()) {
      char name[256] = {0};
      gethostname(name, sizeof(name) - 1);
      host = name;
    }
    advertise = absl::StrFormat("%s:%d", host, port);
  }
  kLog.Info("listening on %s (advertised as %s), %s",
            listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port), advertise,
            security->tls() ? "TLS as " + security->name() : std::string("plaintext"));

  absl::StatusOr<HostDevices> devices = ProbeHost();
  if (!devices.ok()) return ExitWithError(devices.status());
  devices->read_bandwidth_bytes_per_s = MeasureReadBandwidth(threads);
  devices->cpu_isa = kernels::IsaName(kernels::ActiveIsa());
  // What computes this stage's layers, for the coordinator's numerics check
  // and its plan: a GPU worker offers the GPU's memory and bandwidth.
  std::string device_name;
  if (absl::Status s = DescribeDevice(*device, &*devices, &device_name); !s.ok()) {
    return ExitWithError(s);
  }
  kLog.Info("device %s (%s), %s, %d threads, tp %d, %.2f GiB available, read bandwidth %.1f GB/s",
            device->ToString(), device_name, devices->cpu_isa, threads, tp,
            devices->free_memory_bytes / 1073741824.0, devices->read_bandwidth_bytes_per_s / 1e9);

  WorkerOptions options;
  options.coordinator_address = coordinator;
  options.advertise_address = advertise;
  options.threads = threads;
  options.tp = tp;
  options.device = *device;
  options.memory_limit_bytes = memory_limit;
  options.on_serving = [health](bool serving) { health->SetServingStatus(serving); };
  ControlSession session(file->get(), &*config, *devices, options, &state);
  // SIGTERM / SIGINT: stop serving, tell the coordinator, and exit once it
  // has moved or finished this worker's requests and let it go. A second
  // signal exits at once; so does a coordinator that never answers.
  std::thread([&session, health] {
    const int sig = WaitForShutdownSignal();
    kLog.Info("%s: leaving the cluster", strsignal(sig));
    ExitOnNextShutdownSignal();
    health->SetServingStatus(false);
    session.Leave(strsignal(sig));
    absl::SleepFor(absl::Seconds(90));
    kLog.Error("%s", "the coordinator did not let this worker go within 90 s; exiting");
    _exit(1);
  }).detach();
  const absl::Status result = session.Run();
  server->Shutdown();
  if (result.ok()) {
    kLog.Info("%s", "left the cluster; exiting");
    return 0;
  }
  return ExitWithError(result);
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves one pipeline stage for a tessera-coordinator.\n"
      "  tessera-worker --coordinator HOST:PORT --model PATH [--listen HOST:PORT] "
      "[--threads N] [--tp N] [--device cpu|cuda[:N[,M...]]] [--memory-limit BYTES]\n"
      "      [--metrics-listen HOST:PORT]\n"
      "      (--tls-cert PEM --tls-key PEM --tls-ca PEM | --join-secret-file FILE) [--insecure]\n"
      "      [--log-level debug|info|warning|error] [--log-format text|json]");
  std::vector<std::string> storage;
  std::vector<char*> args = tessera::NormaliseDashedFlags(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return tessera::Main();
}
