// tessera-coordinator: the cluster's front door. It reads only the model's
// metadata and tokenizer (it holds no weights), admits workers, plans the
// pipeline over them, and serves the Inference API, grpc.health.v1 (SERVING
// only while a whole pipeline is ready) and server reflection.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/dashed_flags.h"
#include "common/listen_address.h"
#include "common/log.h"
#include "common/metrics/metrics_server.h"
#include "common/shutdown_signal.h"
#include "common/safetensors/model_source.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "common/model_identity.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/admission.h"
#include "coordinator/cluster_metrics.h"
#include "common/http/http_server.h"
#include "coordinator/http/metrics_endpoint.h"
#include "coordinator/http/openai_api.h"
#include "coordinator/inference_service.h"
#include "coordinator/membership.h"
#include "coordinator/model_footprint.h"
#include "coordinator/pipeline_client.h"
#include "coordinator/planner.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "coordinator/serving_metrics.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_listen.h"
#include "proto/node_security.h"
#include "grpcpp/health_check_service_interface.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port for the Inference and Control services; port 0 picks a free one.");
ABSL_FLAG(std::string, model, "",
          "The GGUF model file or Hugging Face checkpoint directory (required). The "
          "coordinator reads its metadata and tokenizer, never its weights.");
ABSL_FLAG(int32_t, min_workers, 1,
          "Workers (pipeline stages) per replica: a replica forms once this many workers are "
          "idle.");
ABSL_FLAG(std::string, replicas, "1",
          "Pipeline replicas to form: a number, or auto for every full group of --min-workers "
          "idle workers. A request goes to the least busy replica; the streams of a replica that "
          "fails move to another one with the same tokens.");
ABSL_FLAG(std::string, placement, "cache",
          "Where a new request goes: cache (the replica that was sent the longest prefix of "
          "its prompt, unless it is clearly busier than the least loaded), load (the least "
          "loaded) or round-robin.");
ABSL_FLAG(double, ramp_up_s, 10,
          "Seconds over which a replica that has just become ready ramps up to its full share "
          "of new requests.");
ABSL_FLAG(bool, mixed_numerics, false,
          "Accept workers whose kernels differ from the first worker's (device type or CPU "
          "kernel path); their replicas may then give a moved request different tokens.");
ABSL_FLAG(int32_t, max_migrations, 3,
          "How many times one request may move to another replica after failures before it "
          "ends UNAVAILABLE.");
ABSL_FLAG(int32_t, step_timeout_ms, 5000,
          "The least time a pipeline step may go unanswered before its replica is presumed "
          "stuck (its requests then move to another replica); see --step-timeout-factor.");
ABSL_FLAG(double, step_timeout_factor, 8,
          "A step may take this many times its expected time (its tokens times the slowest "
          "time per token of the replica's last 256 steps), if that is longer than "
          "--step-timeout-ms; 0 = --step-timeout-ms alone. The first 16 steps get 60 s.");
ABSL_FLAG(int64_t, max_context, 4096,
          "Longest sequence (prompt + generated tokens) served; capped at the model's context.");
ABSL_FLAG(int64_t, max_seqs, 8, "Sequences that run at once; the KV pool is sized for this many "
                                "of --max-context tokens when memory allows.");
ABSL_FLAG(int32_t, max_batch_tokens, 512, "Most tokens in one pipeline step (prefill chunks and "
                                          "decode tokens together).");
ABSL_FLAG(std::string, kv_dtype, "f32",
          "KV cache element type on every worker: f32, or f16 for half the memory and so twice "
          "the KV blocks (values are rounded to half when written).");
ABSL_FLAG(int64_t, max_queue, 256, "Requests that may wait for admission; beyond it, "
                                   "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, micro_batches, 0,
          "Pipeline steps in flight at once; 0 = one per stage, which keeps every stage busy "
          "when at least that many sequences run.");
ABSL_FLAG(int64_t, kv_blocks, 0,
          "Cap on the KV blocks (of 16 tokens) per stage; 0 = what the planner fits. Must "
          "hold one --max-context sequence. Requests beyond it wait or are preempted.");
ABSL_FLAG(std::string, join_secret, "",
          "The secret workers must present to join (required without TLS). Visible to every "
          "local user in the process list: prefer --join-secret-file.");
ABSL_FLAG(std::string, join_secret_file, "",
          "A file (mode 0600) whose first line is the cluster's join secret.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of the coordinator, signed by --tls-ca; its subject alternative "
          "names must hold the host clients and workers dial. With --tls-key and --tls-ca: TLS "
          "on --listen and --http-listen, workers must present certificates from the CA, and "
          "the coordinator presents this one to the stages.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_ca, "", "PEM certificate of the cluster CA.");
ABSL_FLAG(std::string, api_keys, "",
          "File of the client APIs' keys, one per line: ID sha256:HEX [admin] [rpm=N] [tpm=N] "
          "[streams=N] (scripts/security/new_api_key.sh makes one). Every Inference RPC and "
          "/v1 request must then carry 'authorization: Bearer KEY'; health stays open. Reread "
          "on SIGHUP. Empty: no keys (anyone who reaches the ports may call everything).");
ABSL_FLAG(std::string, audit_log, "",
          "Append one JSON line per request (time, key id, client, request id, model, tokens, "
          "finish reason, status, latency) and per refused key to this file; reopened on "
          "SIGHUP, for logrotate. Empty: none.");
ABSL_FLAG(bool, audit_prompts, false, "Also write each request's prompt text to --audit-log.");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext on a --listen, --http-listen or --metrics-listen address other hosts "
          "can reach (refused otherwise without TLS).");
ABSL_FLAG(std::string, http_listen, "",
          "host:port for the OpenAI-compatible HTTP API (/v1/completions, "
          "/v1/chat/completions, /v1/models) and /metrics (Prometheus); empty = off; port 0 "
          "picks a free one.");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus metrics alone (GET /metrics, no API key): the same metrics "
          "as /metrics on --http-listen, for a scraper that should not hold an admin key. "
          "HTTPS with --tls-cert; without TLS an address other hosts can reach needs "
          "--insecure. Aggregate numbers only (no prompts, ids or keys). Empty = off; port 0 "
          "picks a free one.");
ABSL_FLAG(bool, serving_metrics, true,
          "Count request, pipeline and cluster events for /metrics (latency histograms, token "
          "and rejection counters, stage step times). false leaves only what is read at scrape "
          "time (queues, KV use, replica and worker state), e.g. to measure what counting "
          "costs (bench/metrics_bench.sh).");
ABSL_FLAG(std::vector<std::string>, served_model_name, {},
          "Comma-separated names the HTTP API also accepts in a request's \"model\" and lists "
          "in /v1/models, besides the model's file name (vLLM's flag). A request naming any "
          "other model gets 404 model_not_found.");
ABSL_FLAG(int64_t, http_max_streams, 512,
          "HTTP requests open at once (streaming or not); beyond it, 429 at once.");
ABSL_FLAG(int64_t, http_max_connections, 4096,
          "Open HTTP connections; a connection beyond it is answered 503 and closed.");
ABSL_FLAG(double, http_idle_timeout_s, 60,
          "Seconds a keep-alive HTTP connection with no request in progress stays open (also "
          "how long a request body may pause before 408).");
ABSL_FLAG(double, http_header_timeout_s, 10,
          "Seconds a client has to send a request's headers; then 408 and close.");
ABSL_FLAG(int64_t, http_write_buffer_bytes, 4 << 20,
          "Unsent response bytes buffered per HTTP connection; beyond it the stream waits for "
          "the client to read.");
ABSL_FLAG(double, http_write_stall_timeout_s, 30,
          "Seconds an HTTP client may take none of its buffered response before it is "
          "disconnected and its request cancelled.");
ABSL_FLAG(int32_t, heartbeat_timeout_ms, 3000,
          "A worker silent this long (it sends a heartbeat every second) is presumed dead and "
          "its replica fails over.");
ABSL_FLAG(double, drain_timeout_s, 30,
          "On SIGTERM: seconds running requests get to finish (new ones are refused at once) "
          "before the coordinator exits; also how long a leaving worker's replica may finish "
          "its requests when no other replica can take them.");
ABSL_FLAG(std::string, log_format, "text",
          "text: one line per event (time, level, program, component, message); json: one JSON "
          "object per line with time (UTC), level, program, component, request_id (on a "
          "request's lines) and message, for log shippers.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log lines written to stderr: debug, info, warning or error.");

namespace tessera {
namespace {

const Logger kLog("main");


// The model's id in the HTTP API: the file name without directory or .gguf.
std::string ModelId(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();  // a directory
  std::string name = path.substr(path.rfind('/') + 1);
  const std::string ext = ".gguf";
  if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
    name.resize(name.size() - ext.size());
  }
  return name;
}

int Main() {
  // Before any thread starts, so that every thread inherits the mask.
  BlockShutdownSignals();
  if (absl::Status s = InitLogging("tessera-coordinator", absl::GetFlag(FLAGS_log_level),
                                  absl::GetFlag(FLAGS_log_format)); !s.ok()) {
    return ExitWithError(s);
  }
  const std::string model_path = absl::GetFlag(FLAGS_model);
  if (model_path.empty()) return ExitWithError(absl::InvalidArgumentError("--model is required"));
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
  const std::string http_listen = absl::GetFlag(FLAGS_http_listen);
  if (absl::Status s = security->CheckListener(listen, "--listen"); !s.ok()) {
    return ExitWithError(s);
  }
  for (const auto& [address, flag] :
       {std::pair<std::string, const char*>{http_listen, "--http-listen"},
        {absl::GetFlag(FLAGS_metrics_listen), "--metrics-listen"}}) {
    if (address.empty()) continue;
    if (absl::Status s = security->CheckListener(address, flag); !s.ok()) return ExitWithError(s);
  }
  const std::string kv_dtype = absl::GetFlag(FLAGS_kv_dtype);
  if (kv_dtype != "f32" && kv_dtype != "f16") {
    return ExitWithError(absl::InvalidArgumentError(
        absl::StrFormat("--kv-dtype=%s: must be f32 or f16", kv_dtype)));
  }
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenModelFile(model_path);
  if (!file.ok()) return ExitWithError(file.status());
  absl::StatusOr<ModelFootprint> footprint = ModelFootprint::FromGguf(**file);
  if (!footprint.ok()) return ExitWithError(footprint.status());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = OpenModelTokenizer(model_path, **file);
  if (!tokenizer.ok()) return ExitWithError(tokenizer.status());
  const ModelConfig& config = footprint->config;

  const int64_t max_context =
      std::min<int64_t>(absl::GetFlag(FLAGS_max_context), config.context_length);
  if (max_context < 1 || absl::GetFlag(FLAGS_max_seqs) < 1 ||
      absl::GetFlag(FLAGS_max_batch_tokens) < 1 || absl::GetFlag(FLAGS_min_workers) < 1) {
    return ExitWithError(absl::InvalidArgumentError(
        "--max-context, --max-seqs, --max-batch-tokens and --min-workers must be at least 1"));
  }
  int replicas = 0;
  const std::string replicas_flag = absl::GetFlag(FLAGS_replicas);
  if (replicas_flag != "auto" && (!absl::SimpleAtoi(replicas_flag, &replicas) || replicas < 1)) {
    return ExitWithError(absl::InvalidArgumentError(absl::StrFormat(
        "--replicas=%s: must be a number of at least 1, or auto", replicas_flag)));
  }
  if (absl::GetFlag(FLAGS_max_migrations) < 0 || absl::GetFlag(FLAGS_step_timeout_ms) < 1) {
    return ExitWithError(absl::InvalidArgumentError(
        "--max-migrations must be at least 0 and --step-timeout-ms at least 1"));
  }
  PlanOptions plan;
  plan.max_context = max_context;
  plan.max_seqs = absl::GetFlag(FLAGS_max_seqs);
  plan.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  plan.block_size = 16;
  plan.kv_dtype_bytes = kv_dtype == "f16" ? 2 : 4;

  // Request, pipeline and cluster metrics (docs/operations.md lists them);
  // declared before everything that reports to it.
  ServingMetrics serving_metrics(ModelId(model_path));
  // What the serving code reports to: null with --serving-metrics=false.
  ServingMetrics* const counted =
      absl::GetFlag(FLAGS_serving_metrics) ? &serving_metrics : nullptr;
  SchedulerOptions so;
  so.metrics = counted;
  so.max_context = max_context;
  so.max_seqs = plan.max_seqs;
  so.max_batch_tokens = static_cast<int32_t>(plan.max_batch_tokens);
  so.block_size = plan.block_size;
  so.max_queue = absl::GetFlag(FLAGS_max_queue);
  so.micro_batches = absl::GetFlag(FLAGS_micro_batches);
  const int64_t kv_blocks_cap = absl::GetFlag(FLAGS_kv_blocks);
  const int64_t one_sequence = (max_context + plan.block_size - 1) / plan.block_size;
  if (kv_blocks_cap != 0 && kv_blocks_cap < one_sequence) {
    return ExitWithError(absl::InvalidArgumentError(absl::StrFormat(
        "--kv-blocks=%d cannot hold one --max-context=%d sequence (%d blocks of %d)",
        kv_blocks_cap, max_context, one_sequence, plan.block_size)));
  }
  if (so.micro_batches < 0) {
    return ExitWithError(absl::InvalidArgumentError(
        absl::StrFormat("--micro-batches=%d must be >= 0", so.micro_batches)));
  }
  so.step_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_step_timeout_ms));
  so.step_timeout_factor = absl::GetFlag(FLAGS_step_timeout_factor);
  if (!(so.step_timeout_factor >= 0)) {
    return ExitWithError(absl::InvalidArgumentError("--step-timeout-factor must be >= 0"));
  }
  so.max_migrations = absl::GetFlag(FLAGS_max_migrations);
  absl::StatusOr<Placement> placement = ParsePlacement(absl::GetFlag(FLAGS_placement));
  if (!placement.ok()) return ExitWithError(placement.status());
  if (!(absl::GetFlag(FLAGS_ramp_up_s) >= 0)) {
    return ExitWithError(absl::InvalidArgumentError("--ramp-up-s must be >= 0"));
  }
  RouterOptions ro;
  ro.placement = *placement;
  ro.ramp_up = absl::Seconds(absl::GetFlag(FLAGS_ramp_up_s));
  Router router(tokenizer->get(), config, so, ro);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::atomic<grpc::HealthCheckServiceInterface*> health{nullptr};

  // Health: "" serves while any replica does; "tessera.replica.N" per replica.
  auto report_health = [&](int slot) {
    auto* h = health.load();
    if (h == nullptr) return;
    h->SetServingStatus(router.serving());
    h->SetServingStatus(absl::StrCat("tessera.replica.", slot), router.replica_serving(slot));
  };
  MembershipOptions mo;
  mo.min_workers = absl::GetFlag(FLAGS_min_workers);
  mo.replicas = replicas;
  mo.mixed_numerics = absl::GetFlag(FLAGS_mixed_numerics);
  mo.plan = plan;
  mo.security = &*security;
  mo.heartbeat_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_timeout_ms));
  mo.max_kv_blocks = kv_blocks_cap;
  mo.metrics = counted;
  mo.on_ready = [&](int slot, uint64_t epoch, const std::string& stage0,
                    const std::string& last_stage, int64_t blocks, int stages) {
    router.ReplicaReady(slot, epoch,
                        std::make_unique<PipelineClient>(&*security, stage0, last_stage, epoch,
                                                         stages, counted, slot),
                        blocks, stages);
    report_health(slot);
  };
  mo.on_lost = [&](int slot, const std::string& reason) {
    router.ReplicaLost(slot, reason);
    report_health(slot);
  };
  const double drain_s = absl::GetFlag(FLAGS_drain_timeout_s);
  if (!(drain_s >= 0)) {
    return ExitWithError(absl::InvalidArgumentError("--drain-timeout-s must be >= 0"));
  }
  mo.drain_timeout = absl::Seconds(drain_s);
  mo.drain_replica = [&](int slot, absl::Duration timeout) {
    const std::string why = absl::StrFormat("replica %d is shutting down", slot);
    report_health(slot);
    if (!router.DrainReplica(slot, why, timeout)) {
      kLog.Warning("replica %d: requests still running after %s; moving or ending them", slot,
                   absl::FormatDuration(timeout));
    }
    report_health(slot);
  };
  Membership membership(file->get(), &*footprint, mo);
  router.set_on_fault([&](int slot, uint64_t epoch, const std::string& reason) {
    report_health(slot);
    membership.Rebuild(slot, epoch, reason);
  });
  absl::StatusOr<SamplingDefaults> sampling_defaults = ModelSamplingDefaults(model_path);
  if (!sampling_defaults.ok()) return ExitWithError(sampling_defaults.status());
  if (!sampling_defaults->empty()) {
    kLog.Info("model sampling defaults (generation_config.json): %s",
              sampling_defaults->ToString());
  }
  // The one way into the scheduler, for gRPC and HTTP alike.
  Admission::Options ao;
  ao.model_defaults = *sampling_defaults;
  ao.not_ready_reason = [&membership]() -> std::string {
    if (membership.ready()) return "";
    const std::string why = membership.not_ready_reason();
    return why.empty() ? "waiting for workers" : why;
  };
  std::unique_ptr<ApiKeyStore> keys;
  if (const std::string path = absl::GetFlag(FLAGS_api_keys); !path.empty()) {
    absl::StatusOr<std::unique_ptr<ApiKeyStore>> opened = ApiKeyStore::Open(path);
    if (!opened.ok()) return ExitWithError(opened.status());
    keys = *std::move(opened);
    kLog.Info("%d API key(s) from %s; every Inference and /v1 call needs one", keys->size(),
              path);
  } else if (!IsLoopbackOnly(listen).value_or(false) ||
             (!http_listen.empty() && !IsLoopbackOnly(http_listen).value_or(false))) {
    kLog.Warning("%s", "no --api-keys: anyone who reaches the client ports may use them");
  }
  std::unique_ptr<AuditLog> audit;
  if (const std::string path = absl::GetFlag(FLAGS_audit_log); !path.empty()) {
    absl::StatusOr<std::unique_ptr<AuditLog>> opened =
        AuditLog::Open(path, absl::GetFlag(FLAGS_audit_prompts));
    if (!opened.ok()) return ExitWithError(opened.status());
    audit = *std::move(opened);
  } else if (absl::GetFlag(FLAGS_audit_prompts)) {
    return ExitWithError(absl::InvalidArgumentError("--audit-prompts needs --audit-log"));
  }
  RateLimiter limiter;
  ao.keys = keys.get();
  ao.limiter = &limiter;
  ao.audit = audit.get();
  ao.model_name = ModelId(model_path);
  ao.metrics = counted;
  // SIGHUP: reread the keys (a revoked key fails from now on) and reopen the
  // audit log (after logrotate moved it).
  OnReloadSignal([&keys, &audit] {
    if (keys != nullptr) {
      if (absl::Status s = keys->Reload(); s.ok()) {
        kLog.Info("SIGHUP: %d API key(s) in force", keys->size());
      } else {
        kLog.Error("SIGHUP: keeping the keys in force: %s", s.message());
      }
    }
    if (audit != nullptr) {
      if (absl::Status s = audit->Reopen(); !s.ok()) kLog.Error("SIGHUP: %s", s.message());
    }
  });
  Admission admission(tokenizer->get(), &router, ao);
  InferenceService inference(&config, tokenizer->get(), &router, &admission, &membership,
                             max_context, IdentityHex(GgufHeaderHash(**file)), counted);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.RegisterService(&inference);
  builder.RegisterService(&membership);
  absl::StatusOr<std::unique_ptr<grpc::Server>> started =
      StartExclusiveServer(&builder, listen, "--listen",
                           security->ServerCredentials(/*require_client_cert=*/false), &port);
  if (!started.ok()) return ExitWithError(started.status());
  std::unique_ptr<grpc::Server> server = *std::move(started);
  health = server->GetHealthCheckService();
  health.load()->SetServingStatus(router.serving());
  kLog.Info("listening on %s:%d; model %s (%d layers, %s), waiting for %d worker(s)",
            listen.substr(0, listen.rfind(':')), port, config.name, config.n_layer,
            footprint->weight_type, mo.min_workers);
  kLog.Info("%s", security->tls()
                      ? "TLS as " + security->name() + "; workers must present certificates "
                        "from the cluster CA"
                      : std::string("plaintext; workers are checked by the join secret"));
  // Everything /metrics serves: the event counters, and the cluster state
  // read at scrape time.
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  SecurityPosture posture;
  posture.tls = security->tls();
  posture.api_keys = keys != nullptr;
  for (const auto& [flag, address] :
       {std::pair<std::string, std::string>{"--listen", listen}, {"--http-listen", http_listen}}) {
    if (!address.empty() && !security->tls() && !IsLoopbackOnly(address).value_or(false)) {
      posture.insecure_listeners.emplace_back(flag, address);
    }
  }
  if (!metrics_listen.empty() && !security->tls() &&
      !IsLoopbackOnly(metrics_listen).value_or(false)) {
    posture.insecure_listeners.emplace_back("--metrics-listen", metrics_listen);
  }
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables = {
      MakeClusterCollector(&router, &membership, std::move(posture), ModelId(model_path))};
  if (counted != nullptr) collectables.insert(collectables.begin(), counted->registry());
  std::unique_ptr<MetricsServer> metrics_server;
  if (!metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> started_metrics =
        MetricsServer::Start(metrics_listen, collectables, security->cert_pem(),
                             security->key_pem());
    if (!started_metrics.ok()) return ExitWithError(started_metrics.status());
    metrics_server = *std::move(started_metrics);
    kLog.Info("metrics listening on %s (GET /metrics%s)", metrics_server->address(),
              security->tls() ? ", HTTPS" : "");
  }
  // After the gRPC line, which tests parse by its prefix. Declared after
  // the scheduler, so it stops (cancelling its open
  // requests) before the scheduler goes.
  std::unique_ptr<OpenAiApi> openai;
  std::unique_ptr<MetricsEndpoint> metrics;
  std::unique_ptr<HttpServer> http;
  if (!http_listen.empty()) {
    if (absl::GetFlag(FLAGS_http_max_streams) < 1) {
      return ExitWithError(absl::InvalidArgumentError("--http-max-streams must be at least 1"));
    }
    OpenAiOptions oo;
    oo.model_ids = {ModelId(model_path)};
    for (const std::string& name : absl::GetFlag(FLAGS_served_model_name)) {
      if (name.empty()) {
        return ExitWithError(absl::InvalidArgumentError("--served-model-name: names must not be empty"));
      }
      if (std::find(oo.model_ids.begin(), oo.model_ids.end(), name) == oo.model_ids.end()) {
        oo.model_ids.push_back(name);
      }
    }
    oo.max_streams = absl::GetFlag(FLAGS_http_max_streams);
    oo.metrics = counted;
    openai = std::make_unique<OpenAiApi>(tokenizer->get(), &admission, oo);
    HttpServerOptions ho;
    const double idle_s = absl::GetFlag(FLAGS_http_idle_timeout_s);
    const double header_s = absl::GetFlag(FLAGS_http_header_timeout_s);
    const double stall_s = absl::GetFlag(FLAGS_http_write_stall_timeout_s);
    if (absl::GetFlag(FLAGS_http_max_connections) < 1 ||
        absl::GetFlag(FLAGS_http_write_buffer_bytes) < 1 || !(idle_s > 0) || !(header_s > 0) ||
        !(stall_s > 0)) {
      return ExitWithError(absl::InvalidArgumentError(
          "--http-max-connections, --http-write-buffer-bytes and the --http-*-timeout-s flags "
          "must be positive"));
    }
    ho.max_connections = absl::GetFlag(FLAGS_http_max_connections);
    ho.max_write_buffer_bytes = absl::GetFlag(FLAGS_http_write_buffer_bytes);
    ho.idle_timeout = absl::Seconds(idle_s);
    ho.header_timeout = absl::Seconds(header_s);
    ho.write_stall_timeout = absl::Seconds(stall_s);
    ho.tls_cert_pem = security->cert_pem();  // HTTPS with the node's certificate
    ho.tls_key_pem = security->key_pem();
    ho.error_response = [](int status, const std::string& message) {
      return OpenAiApi::Error(status, message);
    };
    http = std::make_unique<HttpServer>(ho);
    openai->Register(http.get());
    metrics = std::make_unique<MetricsEndpoint>(&admission, collectables);
    metrics->Register(http.get());
    if (absl::Status s = http->Start(http_listen); !s.ok()) return ExitWithError(s);
    kLog.Info("http listening on %s:%d (model ids: %s)%s",
              http_listen.substr(0, http_listen.rfind(':')), http->port(),
              absl::StrJoin(oo.model_ids, ", "), security->tls() ? ", HTTPS" : "");
  }
  // SIGTERM / SIGINT: not serving at once, new requests refused, running
  // ones finish (up to --drain-timeout-s), then exit 0. A second signal
  // exits at once.
  const int sig = WaitForShutdownSignal();
  ExitOnNextShutdownSignal();
  kLog.Info("%s: draining (new requests refused; up to %s for %d running)", strsignal(sig),
            absl::FormatDuration(absl::Seconds(drain_s)),
            router.stats().running + router.stats().queued);
  if (auto* h = health.load(); h != nullptr) h->Shutdown();  // every service NOT_SERVING
  const bool drained = router.Drain("the coordinator is shutting down", absl::Seconds(drain_s));
  kLog.Info("%s", drained ? "drained; exiting" : "drain timeout; exiting with requests running");
  if (http != nullptr) http->Stop();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Plans a model over tessera-worker processes and serves it.\n"
      "  tessera-coordinator --model PATH [--listen HOST:PORT] [--min-workers N]\n"
      "      [--replicas N|auto] [--max-migrations N] [--step-timeout-ms MS]\n"
      "      [--heartbeat-timeout-ms MS] [--drain-timeout-s S]\n"
      "      [--placement cache|load|round-robin] [--ramp-up-s S]\n"
      "      [--step-timeout-factor F] [--mixed-numerics]\n"
      "      [--max-context N] [--max-seqs N] [--max-batch-tokens N] [--kv-dtype f32|f16]\n"
      "      [--max-queue N] [--micro-batches N] [--kv-blocks N]\n"
      "      (--tls-cert PEM --tls-key PEM --tls-ca PEM | --join-secret-file FILE) [--insecure]\n"
      "      [--api-keys FILE] [--audit-log FILE] [--audit-prompts]\n"
      "      [--http-listen HOST:PORT] [--metrics-listen HOST:PORT] [--served-model-name A,B]\n"
      "      [--http-max-streams N]\n"
      "      [--http-max-connections N]\n"
      "      [--http-idle-timeout-s S] [--http-header-timeout-s S]\n"
      "      [--http-write-buffer-bytes N] [--http-write-stall-timeout-s S]\n"
      "      [--log-level debug|info|warning|error] [--log-format text|json]");
  std::vector<std::string> storage;
  std::vector<char*> args = tessera::NormaliseDashedFlags(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return tessera::Main();
}
