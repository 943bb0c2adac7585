#include "worker/control_session.h"

#include <algorithm>
#include <climits>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <utility>

#include "common/log.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/model_identity.h"
#include "base/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "worker/dtype_wire.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

const Logger kLog("control");

bool SameStage(const v1::StageAssignment& a, const v1::StageAssignment& b) {
  return a.layer_begin() == b.layer_begin() && a.layer_end() == b.layer_end() &&
         a.kv_blocks() == b.kv_blocks() && a.kv_block_size() == b.kv_block_size() &&
         a.max_batch_tokens() == b.max_batch_tokens() && a.kv_dtype() == b.kv_dtype();
}

// Whether tensor `name` belongs to layers [begin, end) of an n_layer model
// (the embedding goes with the first stage, the head with the last).
bool InRange(const std::string& name, int begin, int end, int n_layer) {
  if (absl::StartsWith(name, "blk.")) {
    const int layer = std::atoi(name.c_str() + 4);
    return layer >= begin && layer < end;
  }
  if (name == "token_embd.weight") return begin == 0 || end == n_layer;
  if (absl::StartsWith(name, "output")) return end == n_layer;
  return true;
}

}  // namespace

uint64_t ResidentBytesOfFile(const std::string& file_path) {
  char resolved[PATH_MAX];
  if (realpath(file_path.c_str(), resolved) == nullptr) return 0;
  const std::string path = resolved;
  // /proc/self/smaps lists each mapping with its backing path, then its
  // counters; "Rss:" there is what this process has mapped in, unaffected by
  // other processes that hold the same file in the page cache.
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  uint64_t kib = 0;
  while (std::getline(in, line)) {
    const bool header = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                        line.find(':') > line.find('-');
    if (header && line.find(" /") != std::string::npos) {
      inside = absl::EndsWith(line, " " + path);
      continue;
    }
    if (header) {
      inside = false;
      continue;
    }
    if (inside && absl::StartsWith(line, "Rss:")) kib += std::strtoull(line.c_str() + 4, nullptr, 10);
  }
  return kib * 1024;
}

ControlSession::ControlSession(const GgufFile* file, const ModelConfig* config,
                               HostDevices devices, WorkerOptions options, WorkerState* state)
    : file_(file),
      config_(config),
      devices_(std::move(devices)),
      options_(std::move(options)),
      state_(state) {
  loaded_.set_stage_index(-1);
}

absl::Status ControlSession::Run() {
  absl::Duration backoff = absl::Seconds(1);
  for (;;) {
    const absl::Time started = absl::Now();
    const grpc::Status status = RunOnce();
    {
      absl::MutexLock lock(&leave_mu_);
      send_ = nullptr;
      if (leaving_) return absl::OkStatus();
    }
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrFormat("coordinator %s refused this worker: %s",
                                          options_.coordinator_address,
                                          status.error_message()));
    }
    // A session that lasted is a new outage: start again from 1 s.
    if (absl::Now() - started > absl::Seconds(30)) backoff = absl::Seconds(1);
    kLog.Warning("lost the coordinator at %s (%s); rejoining in %s",
                 options_.coordinator_address,
                 status.ok() ? "session ended" : status.error_message(),
                 absl::FormatDuration(backoff));
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(8));
  }
}

void ControlSession::Leave(const std::string& reason) {
  absl::MutexLock lock(&leave_mu_);
  leaving_ = true;
  leave_reason_ = reason;
  if (send_) {
    v1::WorkerMessage m;
    m.mutable_leaving()->set_reason(reason);
    send_(m);
  }
}

grpc::Status ControlSession::RunOnce() {
  auto channel =
      grpc::CreateChannel(options_.coordinator_address, state_->security->ChannelCredentials());
  auto stub = v1::Control::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->Session(&context);

  absl::Mutex write_mu;
  auto send = [&](const v1::WorkerMessage& m) {
    absl::MutexLock lock(&write_mu);
    stream->Write(m);
  };

  v1::WorkerMessage join_msg;
  v1::JoinRequest* join = join_msg.mutable_join();
  join->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  join->set_worker_address(options_.advertise_address);
  join->set_join_secret(state_->security->join_secret());
  if (loaded_.stage_index() >= 0) {
    join->set_loaded_layer_begin(loaded_.layer_begin());
    join->set_loaded_layer_end(loaded_.layer_end());
  }
  v1::DeviceInfo* d = join->mutable_devices();
  d->set_type(devices_.device_type);
  d->set_count(devices_.device_count);
  d->set_threads(options_.threads);
  d->set_tensor_parallel(options_.tp);
  d->set_total_memory_bytes(devices_.total_memory_bytes);
  d->set_free_memory_bytes(options_.memory_limit_bytes > 0 ? options_.memory_limit_bytes
                                                           : devices_.free_memory_bytes);
  d->set_read_bandwidth_bytes_per_s(devices_.read_bandwidth_bytes_per_s);
  d->set_isa(devices_.cpu_isa);
  v1::ModelFileIdentity* m = join->mutable_model();
  const std::string& path = file_->path();
  m->set_file_name(path.substr(path.find_last_of('/') + 1));
  m->set_file_bytes(file_->size());
  m->set_header_hash(GgufHeaderHash(*file_));
  send(join_msg);
  {
    absl::MutexLock lock(&leave_mu_);
    if (leaving_) return grpc::Status::OK;  // asked to leave while disconnected
    send_ = send;
  }

  // Heartbeats go out from their own thread so that a long load does not
  // look like a dead worker; the coordinator's are checked here too.
  absl::Mutex seen_mu;
  absl::Time last_seen = absl::Now();
  absl::Notification stop;
  std::thread heartbeat([&] {
    while (!stop.WaitForNotificationWithTimeout(options_.heartbeat_interval)) {
      v1::WorkerMessage hb;
      hb.mutable_heartbeat()->set_unix_micros(absl::ToUnixMicros(absl::Now()));
      hb.mutable_heartbeat()->set_steps(state_->steps.load());
      hb.mutable_heartbeat()->set_busy_since_unix_micros(state_->busy_since_unix_micros.load());
      send(hb);
      absl::MutexLock lock(&seen_mu);
      if (absl::Now() - last_seen > options_.heartbeat_timeout) {
        kLog.Info("%s", "no heartbeat from the coordinator; reconnecting");
        context.TryCancel();
        return;
      }
    }
  });

  v1::CoordinatorMessage msg;
  while (stream->Read(&msg)) {
    {
      absl::MutexLock lock(&seen_mu);
      last_seen = absl::Now();
    }
    switch (msg.kind_case()) {
      case v1::CoordinatorMessage::kAccepted: {
        absl::MutexLock lock(&state_->mu);
        state_->worker_id = msg.accepted().worker_id();
        kLog.Info("joined %s as %s", options_.coordinator_address, msg.accepted().worker_id());
        break;
      }
      case v1::CoordinatorMessage::kAssignment: {
        // Loading can take a while; keep the coordinator's silence from
        // counting against it meanwhile.
        Load(msg.assignment(), send);
        absl::MutexLock lock(&seen_mu);
        last_seen = absl::Now();
        break;
      }
      default:
        break;
    }
  }
  {
    // `send` dies with this call.
    absl::MutexLock lock(&leave_mu_);
    send_ = nullptr;
  }
  stop.Notify();
  heartbeat.join();
  {
    absl::MutexLock lock(&write_mu);
    stream->WritesDone();
  }
  return stream->Finish();
}

void ControlSession::Load(const v1::StageAssignment& a,
                          const std::function<void(const v1::WorkerMessage&)>& send) {
  const int begin = a.layer_begin(), end = a.layer_end(), n_layer = a.n_layer();
  kLog.Info("assigned stage %d of %d: layers [%d, %d), %d KV blocks of %d, tp %d, device %s",
            a.stage_index(), a.num_stages(), begin, end, a.kv_blocks(), a.kv_block_size(),
            options_.tp, options_.device.ToString());
  auto fail = [&](const absl::Status& s) {
    kLog.Error("cannot load stage %d: %s", a.stage_index(), s.ToString());
    v1::WorkerMessage f;
    f.mutable_failed()->set_code(static_cast<int>(s.code()));
    f.mutable_failed()->set_message(std::string(s.message()));
    send(f);
  };
  if (n_layer != config_->n_layer || begin < 0 || end <= begin || end > n_layer) {
    fail(absl::InvalidArgumentError(absl::StrFormat(
        "assignment layers [%d, %d) of %d do not fit this model's %d layers", begin, end,
        n_layer, config_->n_layer)));
    return;
  }

  absl::StatusOr<kernels::DType> kv_dtype =
      DTypeFromProto(a.kv_dtype(), kernels::DType::kF32, "assignment kv_dtype");
  if (kv_dtype.ok() && *kv_dtype != kernels::DType::kF32 && *kv_dtype != kernels::DType::kF16) {
    kv_dtype = absl::InvalidArgumentError(
        absl::StrFormat("assignment kv_dtype = %s; a KV cache is F32 or F16",
                        v1::DType_Name(a.kv_dtype())));
  }
  if (!kv_dtype.ok()) {
    fail(kv_dtype.status());
    return;
  }

  const bool same = loaded_.stage_index() >= 0 && SameStage(loaded_, a);
  {
    // From now on only steps of the new epoch are served. A kept stage
    // forgets every sequence: the replica's new scheduler starts afresh.
    absl::MutexLock lock(&state_->mu);
    state_->epoch = a.epoch();
    state_->upstream_peer = a.upstream_peer();
    state_->coordinator_peer = a.coordinator_peer();
    if (same && state_->executor != nullptr) state_->executor->ReleaseAll();
  }
  if (!same) {
    {
      absl::MutexLock lock(&state_->mu);
      state_->executor.reset();  // frees the old pool before the new one is built
    }
    if (options_.on_serving) options_.on_serving(false);
    StageOptions so;
    so.layers = LayerRange{begin, end};
    so.runner.kv_blocks = a.kv_blocks();
    so.runner.kv_block_size = a.kv_block_size();
    so.runner.kv_dtype = *kv_dtype;
    so.runner.threads = options_.threads;
    so.runner.tp = options_.tp;
    so.runner.device = options_.device;
    so.max_batch_tokens = a.max_batch_tokens();
    absl::StatusOr<std::unique_ptr<StageExecutor>> exec =
        StageExecutor::Create(*file_, *config_, so);
    if (!exec.ok()) {
      fail(exec.status());
      return;
    }

    // Page the range in (and only the range), reporting progress as we go.
    uint64_t total = 0;
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (InRange(t.name, begin, end, n_layer)) total += t.size_bytes;
    }
    uint64_t done = 0, reported = 0;
    volatile uint8_t sink = 0;
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (!InRange(t.name, begin, end, n_layer)) continue;
      const uint8_t* p = file_->TensorData(t);
      uint8_t acc = 0;
      for (uint64_t off = 0; off < t.size_bytes; off += 4096) acc ^= p[off];
      sink = sink ^ acc;
      done += t.size_bytes;
      if (done - reported >= total / 10 || done == total) {
        reported = done;
        v1::WorkerMessage pm;
        pm.mutable_progress()->set_bytes_done(done);
        pm.mutable_progress()->set_bytes_total(total);
        send(pm);
        kLog.Info("loading: %d / %d MiB", done >> 20, total >> 20);
      }
    }
    absl::MutexLock lock(&state_->mu);
    state_->executor = *std::move(exec);
  }

  absl::StatusOr<uint64_t> identity = RangeIdentity(*file_, begin, end, n_layer);
  if (!identity.ok()) {
    fail(identity.status());
    return;
  }
  uint64_t weight_bytes = 0, kv_bytes = 0;
  std::string device;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stage_index = a.stage_index();
    state_->next_stage_address = a.next_stage_address();
    state_->resident_file_bytes = ResidentBytesOfFile(file_->path());
    weight_bytes = state_->executor->weight_bytes();
    kv_bytes = state_->executor->kv_bytes();
    device = state_->executor->device();
  }
  loaded_ = a;
  v1::WorkerMessage rm;
  v1::StageReady* r = rm.mutable_ready();
  r->set_range_identity(*identity);
  r->set_weight_bytes(weight_bytes);
  r->set_kv_bytes(kv_bytes);
  r->set_resident_file_bytes(ResidentBytesOfFile(file_->path()));
  r->set_epoch(a.epoch());
  send(rm);
  if (*identity != a.expected_range_identity()) {
    kLog.Warning("this file's layers [%d, %d) hash to %s; the coordinator expects %s", begin,
                 end, IdentityHex(*identity), IdentityHex(a.expected_range_identity()));
  }
  if (options_.on_serving) options_.on_serving(true);
  kLog.Info("stage %d ready on %s: %.1f MiB of weights, %.1f MiB of KV, next stage %s",
            a.stage_index(), device, weight_bytes / 1048576.0, kv_bytes / 1048576.0,
            a.next_stage_address().empty() ? "(last)" : a.next_stage_address());
}

}  // namespace tessera
