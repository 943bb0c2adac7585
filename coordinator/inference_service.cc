#include "coordinator/inference_service.h"

#include <deque>
#include <optional>
#include <random>
#include <utility>

#include "common/log.h"
#include "coordinator/cluster_status.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "proto/convert.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

const Logger kLog("grpc");

constexpr int32_t kDefaultMaxTokens = 128;

v1::FinishReason FinishReasonOf(const std::string& reason) {
  if (reason == "length") return v1::FINISH_REASON_LENGTH;
  if (reason == "stop") return v1::FINISH_REASON_STOP;
  return v1::FINISH_REASON_UNSPECIFIED;
}

class GenerateReactor;

// What a scheduler wake-up reaches: the reactor while its call lives. The
// pump holds `mu` while it runs the reactor and OnDone takes it before the
// reactor is deleted, so a wake-up that races with the end of the call
// either finishes first or finds `reactor` null.
struct ReactorLink {
  absl::Mutex mu;
  GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  std::atomic<bool> queued{false};  // in the pump's queue, not yet run
};

}  // namespace

// Carries the scheduler's wake-ups to the reactors on one thread, so that the
// scheduler (which wakes with its lock held) never starts a gRPC write.
class StreamPump {
 public:
  // Any thread, any time, even after Stop: runs `link`'s reactor soon.
  void Wake(const std::shared_ptr<ReactorLink>& link) {
    if (link->queued.exchange(true)) return;
    absl::MutexLock lock(&mu_);
    if (!stopping_) ready_.push_back(link);
  }

  // The pump thread's body; returns after Stop.
  void Run();

  void Stop() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    ready_.clear();
  }

 private:
  absl::Mutex mu_;
  std::deque<std::shared_ptr<ReactorLink>> ready_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// A Generate call refused before reaching the scheduler: ends at once.
class RefusedGenerate final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RefusedGenerate(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One admitted Generate call: streams its RequestStream's events to the
// client, one write in flight at a time. Pump runs on the stream pump's
// thread (new events), in OnWriteDone and OnCancel (gRPC's threads) and once
// at the start; all call state is guarded by mu_. Deletes itself in OnDone.
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  GenerateReactor(std::string id, std::shared_ptr<RequestStream> stream,
                  std::shared_ptr<StreamPump> pump)
      : id_(std::move(id)), stream_(std::move(stream)), link_(std::make_shared<ReactorLink>()) {
    {
      absl::MutexLock lock(&link_->mu);
      link_->reactor = this;
    }
    stream_->SetNotifier([pump = std::move(pump), link = link_] { pump->Wake(link); });
    // Events pushed before the notifier was set woke nobody.
    Pump();
  }

  // Starts the next write, or ends the call, if nothing is in flight.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    const v1::GenerateResponse* write = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (write_in_flight_ || finishing_) return;
      if (cancelled_) {
        finish = grpc::Status(grpc::StatusCode::CANCELLED, "request " + id_ + " cancelled");
      } else if (client_gone_) {
        finish = grpc::Status(grpc::StatusCode::CANCELLED,
                              "request " + id_ + ": client went away");
      } else if (final_sent_) {
        kLog.ForRequest(id_).Info("done: %s, %d tokens", finish_reason_, completion_tokens_);
        finish = grpc::Status::OK;
      } else if (Collect()) {
        write_in_flight_ = true;
        write = &response_;
      } else if (failure_.has_value()) {
        finish = ToGrpc(*failure_);
      }
      if (finish.has_value()) finishing_ = true;
    }
    // Outside mu_: gRPC may run reactions on other threads meanwhile.
    if (write != nullptr) {
      StartWrite(write);
    } else if (finish.has_value()) {
      Finish(*finish);
    }
  }

  void OnWriteDone(bool ok) override {
    bool first_sign = false;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!ok) {
        // A cancelling client often shows first as a failed write; OnCancel
        // then follows our Finish and cannot tell, so say it here.
        first_sign = !client_gone_ && !cancelled_;
        client_gone_ = true;
      }
    }
    if (!ok) stream_->Cancel();
    if (first_sign) kLog.ForRequest(id_).Info("cancelled by the client");
    Pump();
  }

  // Client cancel or deadline: the scheduler frees the request's blocks.
  void OnCancel() override {
    stream_->Cancel();
    bool by_client;
    {
      absl::MutexLock lock(&mu_);
      // After our own Finish (an error status reads as a cancel) it is not,
      // and a failed write already reported the client's departure.
      by_client = !finishing_ && !client_gone_;
      cancelled_ = true;
    }
    if (by_client) kLog.ForRequest(id_).Info("cancelled by the client");
    Pump();
  }

  void OnDone() override {
    {
      // Waits out a pump run in progress; later wake-ups find no reactor.
      absl::MutexLock lock(&link_->mu);
      link_->reactor = nullptr;
    }
    stream_->SetNotifier(nullptr);
    bool complete;
    {
      absl::MutexLock lock(&mu_);
      complete = final_sent_ && !cancelled_ && !client_gone_;
    }
    // Ended another way (server shutdown): let the scheduler free it.
    if (!complete) stream_->Cancel();
    delete this;
  }

 private:
  // Moves every queued event into response_, stopping after the final one
  // or at a failure (kept in failure_). Concatenating keeps the wire format:
  // each message carries the text, ids and logprobs new since the previous
  // one, and the final event's fields go out on the last message. True if
  // there is something to write.
  bool Collect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    response_.Clear();
    bool any = false;
    RequestEvent e;
    while (!final_sent_ && !failure_.has_value() && stream_->TryPop(&e)) {
      if (!e.status.ok()) {
        kLog.ForRequest(id_).Warning("failed: %s", e.status.ToString());
        failure_ = e.status;
        break;
      }
      any = true;
      response_.mutable_text()->append(e.text);
      response_.mutable_token_ids()->Add(e.token_ids.begin(), e.token_ids.end());
      response_.mutable_logprobs()->Add(e.logprobs.begin(), e.logprobs.end());
      // One list per token id, so coalesced events stay aligned.
      for (const std::vector<TopLogprob>& list : e.top_logprobs) {
        v1::TopLogprobs* top = response_.add_top_logprobs();
        for (const TopLogprob& c : list) {
          v1::TokenLogprob* t = top->add_candidates();
          t->set_token_id(c.id);
          t->set_logprob(c.logprob);
          t->set_text(c.piece);
        }
      }
      if (e.final) {
        response_.set_finish_reason(FinishReasonOf(e.finish_reason));
        response_.mutable_usage()->set_prompt_tokens(e.prompt_tokens);
        response_.mutable_usage()->set_completion_tokens(e.completion_tokens);
        final_sent_ = true;
        finish_reason_ = e.finish_reason;
        completion_tokens_ = e.completion_tokens;
      }
    }
    if (any) response_.set_request_id(id_);
    return any;
  }

  const std::string id_;
  const std::shared_ptr<RequestStream> stream_;
  const std::shared_ptr<ReactorLink> link_;

  absl::Mutex mu_;
  // Read by gRPC while write_in_flight_; changed only when it is not.
  v1::GenerateResponse response_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;   // Finish called
  bool final_sent_ ABSL_GUARDED_BY(mu_) = false;  // the final event is written or writing
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;   // OnCancel ran
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false; // a write failed
  std::optional<absl::Status> failure_ ABSL_GUARDED_BY(mu_);
  std::string finish_reason_ ABSL_GUARDED_BY(mu_);
  int64_t completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

void StreamPump::Run() {
  for (;;) {
    std::deque<std::shared_ptr<ReactorLink>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !ready_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      batch.swap(ready_);
    }
    for (const std::shared_ptr<ReactorLink>& link : batch) {
      // Cleared first, so an event pushed during this run queues it again.
      link->queued = false;
      absl::MutexLock lock(&link->mu);
      if (link->reactor != nullptr) link->reactor->Pump();
    }
  }
}

InferenceService::InferenceService(const ModelConfig* config, const Tokenizer* tokenizer,
                                   Router* router, Admission* admission,
                                   const Membership* membership, int64_t max_context,
                                   std::string model_identity, const ServingMetrics* metrics)
    : config_(config),
      tokenizer_(tokenizer),
      router_(router),
      admission_(admission),
      membership_(membership),
      max_context_(max_context),
      model_identity_(std::move(model_identity)),
      metrics_(metrics),
      pump_(std::make_shared<StreamPump>()),
      pump_thread_([pump = pump_] { pump->Run(); }) {}

InferenceService::~InferenceService() {
  pump_->Stop();
  pump_thread_.join();
}

namespace {

ChatPromptMessages ChatOf(const v1::ChatPrompt& chat) {
  ChatPromptMessages out{{}, "chat.messages"};
  for (const v1::ChatMessage& m : chat.messages()) out.messages.push_back({m.role(), m.content()});
  return out;
}

// A Generate request as admission takes it.
AdmissionRequest ToAdmission(const v1::GenerateRequest& r) {
  AdmissionRequest a;
  a.request_id = r.request_id();
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText:
      a.prompt = TextPrompt{r.text(), "text"};
      break;
    case v1::GenerateRequest::kTokenIds:
      a.prompt = IdsPrompt{{r.token_ids().ids().begin(), r.token_ids().ids().end()}};
      break;
    case v1::GenerateRequest::kChat:
      a.prompt = ChatOf(r.chat());
      break;
    default:
      break;  // admission refuses it
  }
  a.sampling = SamplingGivenFromProto(r.sampling());
  a.api_defaults = SamplingParams{};  // those of `tessera run`
  a.max_tokens = r.has_max_tokens() ? r.max_tokens() : kDefaultMaxTokens;
  a.stop.assign(r.stop().begin(), r.stop().end());
  a.stop_token_ids.assign(r.stop_token_ids().begin(), r.stop_token_ids().end());
  a.logprobs = r.logprobs();
  a.top_logprobs = r.top_logprobs();
  a.ignore_eos = r.ignore_eos();
  return a;
}

}  // namespace

absl::StatusOr<Caller> InferenceService::CallerOf(grpc::CallbackServerContext* context) const {
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  const std::string authorization =
      it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
  return admission_->Authenticate(authorization, context->peer(), "grpc");
}

// The refusal, with a quota's wait as `retry-after` trailing metadata.
static grpc::Status Refusal(grpc::CallbackServerContext* context, const absl::Status& status) {
  if (const std::optional<int64_t> wait = RetryAfterSeconds(status); wait.has_value()) {
    context->AddTrailingMetadata("retry-after", absl::StrCat(*wait));
  }
  return ToGrpc(status);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  // Reactors own themselves: each deletes itself in OnDone.
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return new RefusedGenerate(ToGrpc(caller.status()));
  AdmissionRequest admission = ToAdmission(*request);
  admission.caller = *std::move(caller);
  absl::StatusOr<Admitted> admitted = admission_->Admit(std::move(admission));
  if (!admitted.ok()) return new RefusedGenerate(Refusal(context, admitted.status()));
  return new GenerateReactor(std::move(admitted->request_id), std::move(admitted->stream), pump_);
}

absl::Status InferenceService::TokenizeInto(const v1::TokenizeRequest& request,
                                            v1::TokenizeResponse* response) const {
  std::vector<int32_t> ids;
  if (request.has_chat()) {
    absl::StatusOr<std::vector<int32_t>> chat = PromptIds(*tokenizer_, ChatOf(request.chat()));
    if (!chat.ok()) {
      return absl::Status(chat.status().code(),
                          absl::StrCat("request tokenize: ", chat.status().message()));
    }
    ids = *std::move(chat);
  } else {
    ids = tokenizer_->Encode(request.text(), request.add_special(), /*parse_special=*/true);
  }
  for (int32_t id : ids) {
    response->add_ids(id);
    response->add_pieces(tokenizer_->TokenToPiece(id, /*render_special=*/true));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<Caller> caller = CallerOf(context); !caller.ok()) {
    reactor->Finish(ToGrpc(caller.status()));
    return reactor;
  }
  reactor->Finish(ToGrpc(TokenizeInto(*request, response)));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(
    grpc::CallbackServerContext* context, const v1::GetModelInfoRequest* /*request*/,
    v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpc(caller.status()));
    return reactor;
  }
  response->set_name(config_->name);
  response->set_architecture(config_->architecture);
  response->set_vocab_size(config_->vocab_size);
  response->set_n_layer(config_->n_layer);
  response->set_context_length(config_->context_length);
  response->set_max_context(max_context_);
  response->set_model_identity(model_identity_);
  response->set_ready(router_->serving());
  // The cluster's layout (worker addresses) and statistics are for admins.
  if (!caller->admin) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  membership_->DescribeStages(response);
  const PipelineTiming timing = router_->pipeline_timing();
  v1::PipelineStats* ps = response->mutable_stats();
  ps->set_steps(timing.steps);
  ps->set_tokens(timing.tokens);
  ps->set_round_trip_micros(static_cast<uint64_t>(timing.round_trip_micros));
  ps->set_overlapped_steps(timing.overlapped_steps);
  for (const PipelineTiming::Stage& t : timing.stages) {
    v1::StageTiming* st = ps->add_stages();
    st->set_stage_index(t.stage_index);
    st->set_compute_micros(static_cast<uint64_t>(t.compute_micros));
    st->set_bytes_in(t.bytes_in);
  }
  const SchedulerStats st = router_->stats();
  v1::ServingStats* sv = response->mutable_serving();
  sv->set_running(st.running);
  sv->set_queued(st.queued);
  sv->set_steps_in_flight(st.steps_in_flight);
  sv->set_kv_blocks_total(st.total_blocks);
  sv->set_kv_blocks_free(st.free_blocks);
  sv->set_preemptions(st.preemptions);
  sv->set_steps(st.steps);
  sv->set_prefill_tokens(st.prefill_tokens);
  sv->set_kv_blocks_cached(st.cached_blocks);
  sv->set_prefix_hit_blocks(st.prefix_hit_blocks);
  sv->set_prefill_chunks(st.prefill_chunks);
  sv->set_max_step_tokens(st.max_step_tokens);
  sv->set_max_steps_in_flight(st.max_steps_in_flight);
  sv->set_deadline_failures(st.deadline_failures);
  sv->set_migrations(router_->migrations());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetClusterStatus(
    grpc::CallbackServerContext* context, const v1::GetClusterStatusRequest* /*request*/,
    v1::ClusterStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpc(caller.status()));
    return reactor;
  }
  if (!caller->admin) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "key " + caller->key_id +
                                     " is not an admin key; the cluster's status needs one"));
    return reactor;
  }
  *response = DescribeCluster(config_->name, *router_, *membership_, metrics_);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tessera
