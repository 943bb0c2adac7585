#include "coordinator/membership.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/model_identity.h"
#include "coordinator/membership_worker.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

const Logger kLog("membership");

}  // namespace


Membership::Membership(const GgufFile* file, const ModelFootprint* footprint,
                       MembershipOptions options)
    : file_(file),
      footprint_(footprint),
      options_(std::move(options)),
      header_hash_(GgufHeaderHash(*file)) {
  next_epoch_ = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  monitor_ = std::thread([this] { Monitor(); });
}

Membership::~Membership() {
  stop_.Notify();
  monitor_.join();
}

grpc::Status Membership::CheckJoin(grpc::ServerContext* context,
                                   const v1::JoinRequest& join) const {
  const std::string who = absl::StrFormat(
      "%s from %s",
      join.worker_address().empty() ? std::string("a worker") : "worker " + join.worker_address(),
      DescribePeer(context));
  // Credentials first: a stranger learns nothing about the cluster.
  const NodeSecurity& security = *options_.security;
  if (security.tls() && PeerCertName(context).empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrFormat("%s presented no client certificate signed by the "
                                        "cluster CA (--tls-cert, --tls-key, --tls-ca)",
                                        who));
  }
  if (!security.join_secret().empty() &&
      !SecretsEqual(join.join_secret(), security.join_secret())) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrFormat("%s presented the wrong join secret", who));
  }
  if (join.protocol_version() != v1::PROTOCOL_VERSION_CURRENT) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrFormat("%s speaks protocol version %d; this coordinator speaks "
                                        "version %d",
                                        who, join.protocol_version(),
                                        static_cast<int>(v1::PROTOCOL_VERSION_CURRENT)));
  }
  if (join.worker_address().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "join: worker_address is empty; the coordinator cannot reach the worker");
  }
  const std::string& path = file_->path();
  const std::string mine = path.substr(path.find_last_of('/') + 1);
  if (join.model().header_hash() != header_hash_ || join.model().file_bytes() != file_->size()) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrFormat("%s has a different model file: %s (%d bytes, header %s); the "
                        "coordinator serves %s (%d bytes, header %s)",
                        who, join.model().file_name(), join.model().file_bytes(),
                        IdentityHex(join.model().header_hash()), mine, file_->size(),
                        IdentityHex(header_hash_)));
  }
  if (join.devices().free_memory_bytes() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrFormat("join: %s reports no free memory", who));
  }
  return grpc::Status::OK;
}

void Membership::MaybePlan() {
  for (;;) {
    // The lowest free slot within the limit.
    int slot = 0;
    while (slot < static_cast<int>(replicas_.size()) && !replicas_[slot].stages.empty()) ++slot;
    if (options_.replicas > 0 && slot >= options_.replicas) return;
    std::vector<std::shared_ptr<Worker>> group = GroupFor(slot);
    if (static_cast<int>(group.size()) < options_.min_workers) {
      int idle = 0;
      for (const auto& w : workers_) idle += w->replica < 0 ? 1 : 0;
      if (slot == 0 || !not_ready_reason_.empty()) {
        not_ready_reason_ = absl::StrFormat("waiting for workers: %d of %d joined", idle,
                                            options_.min_workers);
      }
      return;
    }
    if (!Form(slot, std::move(group))) return;
  }
}

std::vector<std::shared_ptr<Membership::Worker>> Membership::GroupFor(int slot) const {
  const int n = options_.min_workers;
  std::vector<std::shared_ptr<Worker>> group(n);
  // Its old workers back at their old stages, so unchanged ranges stay loaded.
  for (const auto& w : workers_) {
    if (w->replica < 0 && !w->excluded && w->last_replica == slot && w->last_stage >= 0 &&
        w->last_stage < n && group[w->last_stage] == nullptr) {
      group[w->last_stage] = w;
    }
  }
  // Then never-placed workers (those that still hold a range from an
  // earlier coordinator first, in layer order, so that the same plan gives
  // them the same range again), then any idle one, in join order.
  std::vector<std::shared_ptr<Worker>> order = workers_;
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    const bool la = a->loaded_end > 0, lb = b->loaded_end > 0;
    if (la != lb) return la;
    return la && a->loaded_begin < b->loaded_begin;
  });
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& w : order) {
      if (w->replica >= 0 || w->excluded || (pass == 0 && w->last_replica >= 0)) continue;
      if (std::find(group.begin(), group.end(), w) != group.end()) continue;
      auto gap = std::find(group.begin(), group.end(), nullptr);
      if (gap == group.end()) break;
      *gap = w;
    }
  }
  group.erase(std::remove(group.begin(), group.end(), nullptr), group.end());
  return group;
}

bool Membership::Form(int slot, std::vector<std::shared_ptr<Worker>> group) {
  std::vector<WorkerCapacity> caps;
  for (const auto& w : group) {
    WorkerCapacity c;
    c.name = w->address;
    c.memory_bytes = w->devices.free_memory_bytes();
    c.bandwidth_bytes_per_s = w->devices.read_bandwidth_bytes_per_s();
    c.tensor_parallel = std::max(1, w->devices.tensor_parallel());
    caps.push_back(c);
  }
  absl::StatusOr<PipelinePlan> plan = PlanPipeline(*footprint_, caps, options_.plan);
  if (!plan.ok()) {
    not_ready_reason_ = absl::StrFormat("cannot plan the pipeline over %d workers: %s",
                                        group.size(), plan.status().message());
    kLog.Info("%s", not_ready_reason_);
    return false;
  }
  kLog.Info("replica %d plan:\n%s", slot,
            FormatPlan(*footprint_, caps, options_.plan, *plan));
  int64_t blocks = plan->num_blocks;
  if (options_.max_kv_blocks > 0 && options_.max_kv_blocks < blocks) {
    blocks = options_.max_kv_blocks;
    kLog.Info("KV pool capped at %d blocks per stage (--kv-blocks)", blocks);
  }
  std::vector<std::shared_ptr<Worker>> stages;
  for (const StagePlan& sp : plan->stages) stages.push_back(group[sp.worker]);
  std::vector<v1::StageAssignment> assignments;
  const uint64_t epoch = next_epoch_++;
  for (size_t i = 0; i < stages.size(); ++i) {
    const StagePlan& sp = plan->stages[i];
    absl::StatusOr<uint64_t> expected =
        RangeIdentity(*file_, sp.layer_begin, sp.layer_end, footprint_->config.n_layer);
    if (!expected.ok()) {
      not_ready_reason_ = std::string(expected.status().message());
      kLog.Info("%s", not_ready_reason_);
      return false;
    }
    v1::StageAssignment a;
    a.set_stage_index(static_cast<int>(i));
    a.set_num_stages(static_cast<int>(stages.size()));
    a.set_layer_begin(sp.layer_begin);
    a.set_layer_end(sp.layer_end);
    a.set_n_layer(footprint_->config.n_layer);
    a.set_kv_blocks(blocks);
    a.set_kv_block_size(plan->block_size);
    a.set_max_batch_tokens(static_cast<int32_t>(options_.plan.max_batch_tokens));
    a.set_max_context(static_cast<int32_t>(options_.plan.max_context));
    a.set_kv_dtype(options_.plan.kv_dtype_bytes == 2 ? v1::DTYPE_F16 : v1::DTYPE_F32);
    if (i + 1 < stages.size()) a.set_next_stage_address(stages[i + 1]->address);
    // Who may stream into this stage, by certificate (empty without TLS).
    a.set_upstream_peer(i == 0 ? options_.security->name() : stages[i - 1]->cert_name);
    a.set_coordinator_peer(options_.security->name());
    a.set_expected_range_identity(*expected);
    a.set_replica(slot);
    a.set_epoch(epoch);
    assignments.push_back(std::move(a));
  }
  if (static_cast<int>(replicas_.size()) <= slot) replicas_.resize(slot + 1);
  Replica& r = replicas_[slot];
  r.stages = stages;
  r.epoch = epoch;
  r.kv_blocks = blocks;
  r.ready = false;
  not_ready_reason_ = "the workers are loading their stages";
  for (size_t i = 0; i < stages.size(); ++i) {
    stages[i]->replica = slot;
    stages[i]->stage = static_cast<int>(i);
    stages[i]->assignment = assignments[i];
    stages[i]->ready = false;
    v1::CoordinatorMessage m;
    *m.mutable_assignment() = assignments[i];
    stages[i]->Send(m);
  }
  return true;
}

bool Membership::Dissolve(int slot, const std::string& why) {
  if (slot < 0 || slot >= static_cast<int>(replicas_.size())) return false;
  Replica& r = replicas_[slot];
  const bool was_ready = r.ready;
  for (const auto& w : r.stages) {
    w->last_replica = slot;
    w->last_stage = w->stage;
    w->replica = -1;
    w->stage = -1;
    w->ready = false;
  }
  r = Replica();
  not_ready_reason_ = why;
  return was_ready;
}

void Membership::AfterDissolve(int slot, bool was_ready, const std::string& why) {
  // The router moves the replica's streams before any worker of it is given
  // a new assignment.
  if (was_ready && options_.on_lost) options_.on_lost(slot, why);
  absl::MutexLock lock(&mu_);
  MaybePlan();
}

void Membership::Rebuild(int slot, uint64_t epoch, const std::string& reason) {
  // A stage stuck in one step is named from its heartbeats (which report
  // when the step it runs began) and dropped, so the replica forms again
  // without it. Heartbeats come every second, so wait up to two of them for
  // one that shows it; the replica's streams have already moved.
  std::shared_ptr<Worker> stuck;
  int64_t stuck_since = 0;
  const absl::Time give_up = absl::Now() + 2 * options_.heartbeat_interval + absl::Milliseconds(500);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (slot < 0 || slot >= static_cast<int>(replicas_.size()) ||
          replicas_[slot].epoch != epoch || replicas_[slot].stages.empty()) {
        return;  // already dissolved or rebuilt
      }
      const int64_t now = absl::ToUnixMicros(absl::Now());
      for (const auto& w : replicas_[slot].stages) {
        absl::MutexLock wl(&w->write_mu);
        const int64_t since = w->busy_since_unix_micros;
        if (since > 0 && now - since > 500000 && (stuck == nullptr || since < stuck_since)) {
          stuck = w;
          stuck_since = since;
        }
      }
    }
    if (stuck != nullptr || absl::Now() >= give_up) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  bool was_ready = false;
  std::string why = reason;
  {
    absl::MutexLock lock(&mu_);
    if (slot < 0 || slot >= static_cast<int>(replicas_.size()) ||
        replicas_[slot].epoch != epoch || replicas_[slot].stages.empty()) {
      return;
    }
    if (stuck != nullptr) {
      why = absl::StrFormat("%s; %s (%s), stage %d, has been in one step for %.1f s", reason,
                            stuck->id, stuck->address, stuck->stage,
                            (absl::ToUnixMicros(absl::Now()) - stuck_since) / 1e6);
      stuck->excluded = true;
      absl::MutexLock wl(&stuck->write_mu);
      if (!stuck->gone) {
        stuck->dropped_because = why;
        stuck->context->TryCancel();
      }
    }
    kLog.Warning("rebuilding replica %d: %s", slot, why);
    was_ready = Dissolve(slot, why);
  }
  AfterDissolve(slot, was_ready, why);
}

void Membership::Remove(Worker* w, const std::string& why) {
  bool was_ready = false;
  int slot = -1;
  std::string full = why;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = workers_.begin(); it != workers_.end(); ++it) {
      if (it->get() == w) {
        workers_.erase(it);
        break;
      }
    }
    slot = w->replica;
    if (slot >= 0) {
      full = absl::StrFormat("%s; it served stage %d of replica %d", why, w->stage, slot);
      was_ready = Dissolve(slot, full);
    }
  }
  kLog.Info("%s", full);
  if (options_.metrics != nullptr) options_.metrics->WorkerLost();
  if (slot >= 0) AfterDissolve(slot, was_ready, full);
}

grpc::Status Membership::Session(grpc::ServerContext* context, Stream* stream) {
  v1::WorkerMessage msg;
  if (!stream->Read(&msg)) return grpc::Status::OK;
  if (msg.kind_case() != v1::WorkerMessage::kJoin) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first Session message must be a JoinRequest");
  }
  if (grpc::Status s = CheckJoin(context, msg.join()); !s.ok()) {
    kLog.Warning("%s", "refused a join: " + s.error_message());
    return s;
  }
  // A CPU stage's bits depend on its kernel path; a GPU stage's on the GPU;
  // both on the tensor-parallel degree (each row-parallel product becomes a
  // sum of per-rank partial sums, tests/engine/tensor_parallel_test.cc).
  const v1::DeviceInfo& d = msg.join().devices();
  std::string numerics = d.type() == "cpu" || d.type().empty()
                             ? absl::StrFormat("cpu, %s kernels", d.isa())
                             : d.type();
  if (d.tensor_parallel() > 1) absl::StrAppend(&numerics, ", tp ", d.tensor_parallel());
  {
    absl::MutexLock lock(&mu_);
    if (numerics_.empty()) numerics_ = numerics;
    if (numerics != numerics_ && !options_.mixed_numerics) {
      const std::string why = absl::StrFormat(
          "worker %s computes with %s; this cluster's workers compute with %s. Their tokens "
          "differ in the last bits, so a request could not move between their replicas with "
          "the same tokens: give every worker the same kernels (TESSERA_ISA), or start the "
          "coordinator with --mixed-numerics",
          msg.join().worker_address(), numerics, numerics_);
      kLog.Info("refused a join: %s", why);
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
    }
  }
  auto w = std::make_shared<Worker>();
  w->address = msg.join().worker_address();
  w->cert_name = PeerCertName(context);
  w->loaded_begin = msg.join().loaded_layer_begin();
  w->loaded_end = msg.join().loaded_layer_end();
  w->devices = msg.join().devices();
  w->context = context;
  w->stream = stream;
  {
    absl::MutexLock lock(&w->write_mu);
    w->last_seen = absl::Now();
  }
  {
    absl::MutexLock lock(&mu_);
    w->id = absl::StrFormat("worker-%d", next_worker_++);
    v1::CoordinatorMessage accepted;
    accepted.mutable_accepted()->set_worker_id(w->id);
    accepted.mutable_accepted()->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    w->Send(accepted);
    workers_.push_back(w);
    if (options_.metrics != nullptr) options_.metrics->WorkerJoined();
    kLog.Info("%s joined from %s: %s ×%d (%s), %.2f GiB free, %.1f GB/s", w->id, w->address, w->devices.type(), w->devices.count(), w->devices.isa(), w->devices.free_memory_bytes() / 1073741824.0, w->devices.read_bandwidth_bytes_per_s() / 1e9);
    MaybePlan();
  }

  grpc::Status result = grpc::Status::OK;
  std::string why = absl::StrFormat("%s (%s) disconnected", w->id, w->address);
  while (stream->Read(&msg)) {
    {
      absl::MutexLock lock(&w->write_mu);
      w->last_seen = absl::Now();
      if (msg.has_heartbeat()) {
        w->busy_since_unix_micros = msg.heartbeat().busy_since_unix_micros();
      }
    }
    if (msg.has_progress()) {
      kLog.Info("%s loading: %d / %d MiB", w->id, msg.progress().bytes_done() >> 20, msg.progress().bytes_total() >> 20);
    } else if (msg.has_failed()) {
      why = absl::StrFormat("%s (%s) could not load its stage: %s", w->id, w->address,
                            msg.failed().message());
      result = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
      break;
    } else if (msg.has_leaving()) {
      int slot = -1;
      bool others = false;
      {
        absl::MutexLock lock(&mu_);
        slot = w->replica;
        for (size_t r = 0; r < replicas_.size(); ++r) {
          others = others || (static_cast<int>(r) != slot && replicas_[r].ready);
        }
      }
      kLog.Info("%s (%s) is leaving (%s)", w->id, w->address, msg.leaving().reason());
      // With another replica ready its requests move there when it is
      // removed below; without one they finish here first.
      if (slot >= 0 && !others && options_.drain_replica) {
        options_.drain_replica(slot, options_.drain_timeout);
      }
      why = absl::StrFormat("%s (%s) left: %s", w->id, w->address, msg.leaving().reason());
      break;
    } else if (msg.has_ready()) {
      std::string stage0, last_stage;
      int64_t blocks = 0;
      int num_stages = 0;
      int slot = -1;
      uint64_t epoch = 0;
      {
        absl::MutexLock lock(&mu_);
        // An assignment since withdrawn, or an answer to an older one.
        if (w->stage < 0 || msg.ready().epoch() != w->assignment.epoch()) continue;
        const uint64_t expected = w->assignment.expected_range_identity();
        if (msg.ready().range_identity() != expected) {
          why = absl::StrFormat(
              "%s (%s): layers [%d, %d) of its model file hash to %s, but the coordinator's "
              "file gives %s (same shapes, different weights: a fine-tune or another "
              "quantization?)",
              w->id, w->address, w->assignment.layer_begin(), w->assignment.layer_end(),
              IdentityHex(msg.ready().range_identity()), IdentityHex(expected));
          result = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
          break;
        }
        w->ready = true;
        w->weight_bytes = msg.ready().weight_bytes();
        kLog.Info("%s ready: replica %d stage %d, layers [%d, %d), %.1f MiB of weights, %.1f "
                  "MiB of the file resident",
                  w->id, w->replica, w->stage, w->assignment.layer_begin(),
                  w->assignment.layer_end(), w->weight_bytes / 1048576.0,
                  msg.ready().resident_file_bytes() / 1048576.0);
        Replica& r = replicas_[w->replica];
        bool all = !r.stages.empty();
        for (const auto& s : r.stages) all = all && s->ready;
        if (all && !r.ready) {
          r.ready = true;
          slot = w->replica;
          epoch = r.epoch;
          stage0 = r.stages[0]->address;
          last_stage = r.stages.back()->address;
          blocks = r.kv_blocks;
          num_stages = static_cast<int>(r.stages.size());
          not_ready_reason_.clear();
        }
      }
      if (slot >= 0) {
        if (options_.on_ready) {
          options_.on_ready(slot, epoch, stage0, last_stage, blocks, num_stages);
        }
        kLog.Info("pipeline ready: replica %d (epoch %d), %d KV blocks per stage, stage 0 at %s",
                  slot, epoch, blocks, stage0);
      }
    }
  }
  {
    absl::MutexLock lock(&w->write_mu);
    w->gone = true;
    if (!w->dropped_because.empty()) why = w->dropped_because;
  }
  Remove(w.get(), why);
  return result;
}

void Membership::Monitor() {
  while (!stop_.WaitForNotificationWithTimeout(options_.heartbeat_interval)) {
    std::vector<std::shared_ptr<Worker>> workers;
    {
      absl::MutexLock lock(&mu_);
      workers = workers_;
    }
    v1::CoordinatorMessage hb;
    hb.mutable_heartbeat()->set_unix_micros(absl::ToUnixMicros(absl::Now()));
    for (const auto& w : workers) {
      absl::MutexLock lock(&w->write_mu);
      if (w->gone || !w->dropped_because.empty()) continue;
      if (absl::Now() - w->last_seen > options_.heartbeat_timeout) {
        w->dropped_because = absl::StrFormat("%s (%s) sent no heartbeat for %s", w->id, w->address,
                                             absl::FormatDuration(options_.heartbeat_timeout));
        kLog.Warning("%s; dropping it", w->dropped_because);
        w->context->TryCancel();
        continue;
      }
      w->stream->Write(hb);
    }
  }
}

}  // namespace tessera
