#include "worker/stage_service.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "proto/convert.h"
#include "proto/grpc_status.h"
#include "worker/dtype_wire.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using Clock = std::chrono::steady_clock;

const Logger kLog("stage");

v1::StepResult ErrorResult(uint64_t step_id, const absl::Status& status) {
  v1::StepResult r;
  r.set_step_id(step_id);
  r.set_code(static_cast<int>(status.code()));
  r.set_message(std::string(status.message()));
  return r;
}

// The stream to the next stage, opened on the first forwarded step, and the
// thread that relays what comes back on it upstream unchanged: errors, the
// answers to steps without a results session, and, when the stream ends,
// one notice (step_id 0, UNAVAILABLE) that the pipeline below is broken.
class DownstreamLink {
 public:
  using Upstream = grpc::ServerReaderWriter<v1::StepResult, v1::StepRequest>;

  DownstreamLink(std::string address, int stage_index, uint64_t epoch, Upstream* upstream,
                 absl::Mutex* upstream_mu, WorkerState* state)
      : address_(std::move(address)),
        stage_index_(stage_index),
        upstream_(upstream),
        upstream_mu_(upstream_mu),
        state_(state) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(address_, state_->security->ChannelCredentials(), args);
    // The next stage checks that this stream comes from its planned peer.
    if (std::string proof = state_->security->StageProof("steps", epoch, stage_index + 1);
        !proof.empty()) {
      context_.AddMetadata(kStageProofKey, proof);
    }
    stream_ = v1::Stage::NewStub(channel_)->Steps(&context_);
    relay_ = std::thread([this] { Relay(); });
  }

  ~DownstreamLink() {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      if (!broken_) stream_->WritesDone();
    }
    relay_.join();
  }

  absl::Status Forward(const v1::StepRequest& request) {
    absl::MutexLock lock(&mu_);
    if (broken_) return absl::UnavailableError(broken_message_);
    const uint64_t bytes = request.ByteSizeLong();
    if (!stream_->Write(request)) {
      broken_ = true;
      broken_message_ = absl::StrFormat("next stage %s closed the step stream", address_);
      return absl::UnavailableError(broken_message_);
    }
    state_->bytes_sent += bytes;
    return absl::OkStatus();
  }

 private:
  void Relay() {
    v1::StepResult result;
    while (stream_->Read(&result)) {
      if (result.step_id() == 0 && result.code() == 0) continue;  // nothing to tell
      if (result.step_id() != 0) ++state_->results_relayed;
      absl::MutexLock lock(upstream_mu_);
      upstream_->Write(result);
    }
    const grpc::Status status = stream_->Finish();
    std::string why;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;  // we closed it: the upstream stream is ending too
      broken_ = true;
      broken_message_ = absl::StrFormat(
          "stage %d at %s (after stage %d) failed: %s", stage_index_ + 1, address_, stage_index_,
          status.ok() ? "stream ended" : status.error_message());
      why = broken_message_;
    }
    // Steps forwarded and not yet answered are lost; whoever waits for them
    // learns it now rather than at their deadline.
    absl::MutexLock lock(upstream_mu_);
    upstream_->Write(ErrorResult(0, absl::UnavailableError(why)));
  }

  const std::string address_;
  const int stage_index_;
  Upstream* const upstream_;
  absl::Mutex* const upstream_mu_;
  WorkerState* const state_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StepRequest, v1::StepResult>> stream_;
  absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_message_ ABSL_GUARDED_BY(mu_);
  std::thread relay_;
};

}  // namespace

absl::Status DecodeStep(const v1::StepRequest& request, bool first_stage, int n_embd,
                        std::vector<StageSequence>* seqs, std::vector<float>* hidden) {
  seqs->clear();
  hidden->clear();
  int64_t total_tokens = 0;
  for (int i = 0; i < request.seqs_size(); ++i) {
    const v1::SequenceWork& w = request.seqs(i);
    StageSequence s;
    s.request_id = w.request_id();
    s.step.seq_id = w.seq_id();
    s.step.start_pos = w.start_pos();
    s.step.num_tokens = w.num_tokens();
    s.prefix_cached = w.prefix_cached();
    if (w.num_tokens() < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "seqs[%d] (sequence %d): num_tokens = %d; must be at least 1", i, w.seq_id(),
          w.num_tokens()));
    }
    if (first_stage) {
      if (w.token_ids_size() != w.num_tokens()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "seqs[%d] (sequence %d): %d token_ids for num_tokens = %d", i, w.seq_id(),
            w.token_ids_size(), w.num_tokens()));
      }
      s.step.tokens.assign(w.token_ids().begin(), w.token_ids().end());
    }
    s.step.block_table.assign(w.block_table().begin(), w.block_table().end());
    s.sample = w.sample();
    s.sampling = SamplingFromProto(w.sampling());
    s.rng_counter = w.rng_counter();
    s.recent_tokens.assign(w.recent_tokens().begin(), w.recent_tokens().end());
    s.want_logprob = w.want_logprob();
    s.top_logprobs = w.top_logprobs();  // range-checked by StageExecutor::Run
    total_tokens += w.num_tokens();
    seqs->push_back(std::move(s));
  }

  const v1::Tensor& t = request.hidden();
  const bool has_hidden = request.has_hidden();
  if (first_stage) {
    if (has_hidden) {
      return absl::InvalidArgumentError(
          "hidden: stage 0 takes token ids, but the step carries a hidden-state tensor");
    }
    return absl::OkStatus();
  }
  if (seqs->empty() && !has_hidden) return absl::OkStatus();
  if (!has_hidden) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hidden: missing; this stage needs [%d, %d] f32 hidden states", total_tokens, n_embd));
  }
  if (t.dtype() != v1::DTYPE_F32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hidden.dtype = %s; this stage computes in DTYPE_F32",
        v1::DType_Name(t.dtype()).empty() ? absl::StrCat(static_cast<int>(t.dtype()))
                                           : v1::DType_Name(t.dtype())));
  }
  if (t.shape_size() != 2 || t.shape(0) != total_tokens || t.shape(1) != n_embd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hidden.shape = [%s]; expected [%d, %d] (the step's tokens × n_embd)",
        absl::StrJoin(t.shape(), ", "), total_tokens, n_embd));
  }
  const uint64_t want_bytes = static_cast<uint64_t>(total_tokens) * n_embd * sizeof(float);
  if (t.data().size() != want_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hidden.data is %d bytes; shape [%d, %d] in f32 needs %d", t.data().size(),
        total_tokens, n_embd, want_bytes));
  }
  hidden->resize(static_cast<size_t>(total_tokens) * n_embd);
  std::memcpy(hidden->data(), t.data().data(), want_bytes);
  return absl::OkStatus();
}

// Refuses a call the plan did not send here; logged, since it is either a
// misconfigured node or someone probing the cluster.
grpc::Status StageService::Refuse(const absl::Status& status, const char* rpc) const {
  kLog.Warning("refused a %s call: %s", rpc, status.message());
  return ToGrpc(status);
}

grpc::Status StageService::Steps(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::StepResult, v1::StepRequest>* stream) {
  // Only the node the plan put upstream of this stage may stream steps
  // into it, and only for the epoch the stream was opened in.
  uint64_t stream_epoch = 0;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stage_index < 0) {
      return Refuse(absl::UnavailableError(absl::StrFormat(
                        "%s: this worker has no stage assigned yet", DescribePeer(context))),
                    "Steps");
    }
    stream_epoch = state_->epoch;
    absl::Status allowed = state_->security->CheckStagePeer(
        context, state_->upstream_peer, "steps", stream_epoch, state_->stage_index);
    if (!allowed.ok()) return Refuse(allowed, "Steps");
  }
  absl::Mutex upstream_mu;
  std::unique_ptr<DownstreamLink> downstream;
  auto answer = [&](const v1::StepResult& result) {
    absl::MutexLock lock(&upstream_mu);
    stream->Write(result);
  };

  v1::StepRequest request;
  std::vector<StageSequence> seqs;
  std::vector<float> hidden_in, hidden_out;
  std::vector<StageSample> samples;
  while (stream->Read(&request)) {
    const Clock::time_point start = Clock::now();
    const int64_t start_unix_micros = absl::ToUnixMicros(absl::Now());
    const uint64_t bytes_in = request.ByteSizeLong();
    state_->bytes_received += bytes_in;
    const uint64_t step_id = request.step_id();

    absl::Status status;
    bool stale = false;
    bool last = false;
    int stage_index = -1;
    std::string next_address;
    int64_t step_tokens = 0;
    {
      absl::MutexLock lock(&state_->mu);
      StageExecutor* exec = state_->executor.get();
      stage_index = state_->stage_index;
      next_address = state_->next_stage_address;
      if (request.epoch() != state_->epoch || request.epoch() != stream_epoch) {
        // Fencing: a step of a replica this stage no longer serves (its
        // coordinator gave up on it and rebuilt the replica) must not touch
        // the KV of the one that replaced it.
        stale = true;
        status = absl::FailedPreconditionError(absl::StrFormat(
            "step %d is for replica epoch %d; stage %d serves epoch %d%s", step_id,
            request.epoch(), stage_index, state_->epoch,
            stream_epoch == state_->epoch
                ? ""
                : absl::StrFormat(" (this stream was opened for epoch %d)", stream_epoch)));
      } else if (exec == nullptr) {
        status = absl::UnavailableError("this worker has no stage loaded yet");
      } else {
        last = exec->is_last();
        status = DecodeStep(request, exec->is_first(), exec->n_embd(), &seqs, &hidden_in);
        if (status.ok()) {
          state_->busy_since_unix_micros = start_unix_micros;
          if (++state_->steps_started == state_->fault_stall_step) {
            kLog.Warning("stalling step %d for %s (--fault-stall-after-steps)", step_id,
                         absl::FormatDuration(state_->fault_stall));
            absl::SleepFor(state_->fault_stall);
          }
          const Clock::time_point run_start = Clock::now();
          status = exec->Run(seqs, hidden_in, &hidden_out, &samples);
          state_->busy_since_unix_micros = 0;
          if (state_->on_step_ran) {
            state_->on_step_ran(std::chrono::duration<double>(Clock::now() - run_start).count());
          }
        }
        // Releases apply even when the step itself was refused.
        exec->Release(std::vector<int64_t>(request.release_seq_ids().begin(),
                                           request.release_seq_ids().end()));
      }
    }
    // Sequences refused for non-finite hidden states did not run; name the
    // sender in their errors (the previous stage, seen from here as a peer).
    absl::flat_hash_set<int64_t> refused;
    std::vector<v1::SampledToken> refused_tokens;
    if (status.ok()) {
      for (StageSample& s : samples) {
        if (s.status.code() != absl::StatusCode::kDataLoss) continue;
        s.status = absl::DataLossError(
            absl::StrFormat("%s; sent to stage %d by stage %d (peer %s)", s.status.message(),
                            stage_index, stage_index - 1, context->peer()));
        refused.insert(s.seq_id);
        v1::SampledToken& t = refused_tokens.emplace_back();
        t.set_seq_id(s.seq_id);
        t.set_code(static_cast<int>(s.status.code()));
        t.set_message(std::string(s.status.message()));
      }
    }
    for (const StageSequence& s : seqs) {
      if (!refused.contains(s.step.seq_id)) step_tokens += s.step.num_tokens;
    }
    v1::StageTrace trace;
    trace.set_stage_index(stage_index);
    trace.set_compute_micros(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    trace.set_bytes_in(bytes_in);
    trace.set_start_unix_micros(start_unix_micros);

    if (!last && !next_address.empty() && downstream == nullptr) {
      downstream = std::make_unique<DownstreamLink>(next_address, stage_index, stream_epoch,
                                                    stream, &upstream_mu, state_);
    }
    if (!status.ok()) {
      if (step_id != 0) answer(ErrorResult(step_id, status));
      if (!stale && downstream != nullptr && request.release_seq_ids_size() > 0) {
        v1::StepRequest release;
        release.set_epoch(request.epoch());
        *release.mutable_release_seq_ids() = request.release_seq_ids();
        downstream->Forward(release).IgnoreError();
      }
      continue;
    }
    ++state_->steps;
    state_->tokens += step_tokens;

    if (last) {
      if (step_id == 0) continue;
      v1::StepResult result;
      result.set_step_id(step_id);
      for (const StageSample& s : samples) {
        v1::SampledToken* t = result.add_tokens();
        t->set_seq_id(s.seq_id);
        if (!s.status.ok()) {
          t->set_code(static_cast<int>(s.status.code()));
          t->set_message(std::string(s.status.message()));
          continue;
        }
        t->set_token_id(s.token_id);
        t->set_logprob(s.logprob);
        for (const TokenLogprob& c : s.top_logprobs) {
          t->add_top_token_ids(c.id);
          t->add_top_logprobs(c.logprob);
        }
      }
      for (const v1::SampledToken& t : request.refused()) *result.add_tokens() = t;
      *result.mutable_traces() = request.traces();
      *result.add_traces() = trace;
      const uint64_t session = request.results_session();
      if (session == 0) {
        answer(result);
      } else if (state_->routes.Deliver(session, result)) {
        ++state_->results_direct;
      } else {
        answer(ErrorResult(
            step_id, absl::UnavailableError(absl::StrFormat(
                         "no Results stream is open (or it broke) for session %d on stage %d",
                         session, stage_index))));
      }
      continue;
    }
    if (downstream == nullptr) {
      answer(ErrorResult(step_id, absl::FailedPreconditionError(
                                      "this stage is not last but has no next stage address")));
      continue;
    }
    // Refused sequences go no further; the last stage reports their errors
    // with the step's result.
    if (!refused.empty()) {
      auto* work = request.mutable_seqs();
      work->erase(std::remove_if(work->begin(), work->end(),
                                 [&](const v1::SequenceWork& w) {
                                   return refused.contains(w.seq_id());
                                 }),
                  work->end());
      for (v1::SampledToken& t : refused_tokens) *request.add_refused() = std::move(t);
    }
    // Token ids are only needed by stage 0; the hidden states replace them.
    for (v1::SequenceWork& w : *request.mutable_seqs()) w.clear_token_ids();
    if (request.seqs_size() > 0) {
      v1::Tensor* t = request.mutable_hidden();
      t->set_dtype(v1::DTYPE_F32);
      t->clear_shape();
      t->add_shape(step_tokens);
      t->add_shape(static_cast<int64_t>(hidden_out.size()) / std::max<int64_t>(step_tokens, 1));
      t->set_data(reinterpret_cast<const char*>(hidden_out.data()),
                  hidden_out.size() * sizeof(float));
    } else {
      request.clear_hidden();
    }
    if (step_id != 0) *request.add_traces() = trace;
    absl::Status sent = downstream->Forward(request);
    if (!sent.ok() && step_id != 0) answer(ErrorResult(step_id, sent));
  }
  downstream.reset();  // half-closes the next stage's stream and drains its answers
  return context->IsCancelled() ? grpc::Status(grpc::StatusCode::CANCELLED, "upstream cancelled")
                                : grpc::Status::OK;
}

grpc::Status StageService::Results(grpc::ServerContext* context,
                                   const v1::ResultsRequest* request,
                                   grpc::ServerWriter<v1::StepResult>* writer) {
  {
    // Results carry every stream's tokens: the coordinator alone opens it.
    absl::MutexLock lock(&state_->mu);
    if (state_->stage_index < 0) {
      return Refuse(absl::UnavailableError(absl::StrFormat(
                        "%s: this worker has no stage assigned yet", DescribePeer(context))),
                    "Results");
    }
    absl::Status allowed = state_->security->CheckStagePeer(
        context, state_->coordinator_peer, "results", state_->epoch, state_->stage_index);
    if (!allowed.ok()) return Refuse(allowed, "Results");
  }
  if (request->session() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "session: must not be 0");
  }
  v1::StepResult opened;  // step_id 0, code 0: the session is open
  if (!writer->Write(opened)) return grpc::Status::OK;
  // From here on the Steps handlers write this stream's results (through the
  // route, one at a time); this thread only keeps the call open until the
  // coordinator goes away or the server shuts down (which cancels every
  // call).
  std::unique_ptr<ResultRoutes::Route> route = state_->routes.Open(
      request->session(), [writer](const v1::StepResult& r) { return writer->Write(r); });
  while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(100));
  return grpc::Status::OK;
}

grpc::Status StageService::GetWorkerStatus(grpc::ServerContext* context,
                                           const v1::WorkerStatusRequest* /*request*/,
                                           v1::WorkerStatus* response) {
  // Any node of the cluster (a CA-signed certificate, which the TLS
  // listener already required, or a proof of the join secret).
  if (absl::Status allowed = state_->security->CheckStagePeer(context, "", "status", 0, 0);
      !allowed.ok()) {
    return Refuse(allowed, "GetWorkerStatus");
  }
  absl::MutexLock lock(&state_->mu);
  response->set_worker_id(state_->worker_id);
  response->set_stage_index(state_->stage_index);
  response->set_epoch(state_->epoch);
  response->set_resident_file_bytes(state_->resident_file_bytes);
  if (state_->executor != nullptr) {
    const StageExecutor& e = *state_->executor;
    response->set_layer_begin(e.range().begin);
    response->set_layer_end(e.range().end);
    response->set_weight_bytes(e.weight_bytes());
    response->set_live_sequences(state_->executor->live_sequences());
    response->set_kv_blocks(state_->executor->kv_blocks());
    response->set_kv_bytes(state_->executor->kv_bytes());
    response->set_kv_dtype(DTypeToProto(state_->executor->kv_dtype()));
    response->set_device(state_->executor->device());
    response->set_ready(true);
  }
  response->set_steps(state_->steps);
  response->set_tokens(state_->tokens);
  response->set_bytes_received(state_->bytes_received);
  response->set_bytes_sent(state_->bytes_sent);
  response->set_results_relayed(state_->results_relayed);
  response->set_results_direct(state_->results_direct);
  return grpc::Status::OK;
}

}  // namespace tessera
