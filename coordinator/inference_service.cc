#include "coordinator/inference_service.h"

#include <random>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

void Log(const std::string& line) { absl::FPrintF(stderr, "tessera-coordinator: %s\n", line); }

constexpr size_t kMaxRequestIdBytes = 128;
constexpr int32_t kDefaultMaxTokens = 128;

// Fields the request sets, else the model's recommended values, else
// Tessera's defaults (SamplingParams{}).
SamplingParams FromRequest(const v1::SamplingParameters& w, const SamplingDefaults& model) {
  SamplingParams p = model.Apply(SamplingParams{});
  if (w.has_temperature()) p.temperature = w.temperature();
  if (w.has_top_k()) p.top_k = w.top_k();
  if (w.has_top_p()) p.top_p = w.top_p();
  if (w.has_min_p()) p.min_p = w.min_p();
  if (w.has_repetition_penalty()) p.repetition_penalty = w.repetition_penalty();
  if (w.has_repeat_last_n()) p.repeat_last_n = w.repeat_last_n();
  if (w.has_seed()) p.seed = w.seed();
  return p;
}

v1::FinishReason FinishReasonOf(const std::string& reason) {
  if (reason == "length") return v1::FINISH_REASON_LENGTH;
  if (reason == "stop") return v1::FINISH_REASON_STOP;
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

InferenceService::InferenceService(const ModelConfig* config, const Tokenizer* tokenizer,
                                   Scheduler* scheduler, const Membership* membership,
                                   int64_t max_context, std::string model_identity,
                                   SamplingDefaults sampling_defaults)
    : config_(config),
      tokenizer_(tokenizer),
      scheduler_(scheduler),
      membership_(membership),
      max_context_(max_context),
      model_identity_(std::move(model_identity)),
      sampling_defaults_(sampling_defaults) {}

absl::StatusOr<std::vector<int32_t>> InferenceService::ChatTokens(
    const v1::ChatPrompt& chat, const std::string& request_id) const {
  if (chat.messages_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request %s: chat.messages is empty", request_id));
  }
  std::vector<ChatMessage> messages;
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    // Roles are rendered as template text (GLM-4 builds its "<|user|>"
    // token from one), so only the known ones are let through.
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "request %s: chat.messages[%d].role = \"%s\"; must be system, user or assistant",
          request_id, i, m.role()));
    }
    messages.push_back({m.role(), m.content()});
  }
  // Contents are encoded as plain text, so a client cannot inject control
  // tokens such as <|im_start|>.
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer_->EncodeChat(messages, true);
  if (!ids.ok()) {
    return absl::Status(ids.status().code(), absl::StrFormat("request %s: chat: %s", request_id,
                                                             ids.status().message()));
  }
  return ids;
}

absl::StatusOr<std::vector<int32_t>> InferenceService::PromptTokens(
    const v1::GenerateRequest& request, const std::string& request_id) const {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      if (request.text().empty()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("request %s: text is empty", request_id));
      }
      // As in `tessera run`, special-token text in a raw prompt is honoured.
      return tokenizer_->Encode(request.text(), /*add_special=*/true, /*parse_special=*/true);
    case v1::GenerateRequest::kTokenIds:
      return std::vector<int32_t>(request.token_ids().ids().begin(),
                                  request.token_ids().ids().end());
    case v1::GenerateRequest::kChat:
      return ChatTokens(request.chat(), request_id);
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "request %s: prompt: one of text, token_ids or chat is required", request_id));
  }
}

grpc::Status InferenceService::Generate(grpc::ServerContext* context,
                                        const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  std::string id = request->request_id();
  if (id.size() > kMaxRequestIdBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrFormat("request_id is %d bytes; at most %d", id.size(),
                                        kMaxRequestIdBytes));
  }
  if (id.empty()) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    id = absl::StrFormat("req-%d-%04x", next_request_++, rng() & 0xffff);
  }
  absl::StatusOr<std::vector<int32_t>> prompt = PromptTokens(*request, id);
  if (!prompt.ok()) return ToGrpc(prompt.status());
  if (!membership_->ready()) {
    // Say why: still joining, loading, or the planner's numbers.
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrFormat("request %s: no pipeline is ready: %s", id,
                                        membership_->not_ready_reason()));
  }
  RequestSpec spec;
  spec.request_id = id;
  spec.prompt = *std::move(prompt);
  spec.max_tokens = request->has_max_tokens() ? request->max_tokens() : kDefaultMaxTokens;
  spec.sampling = FromRequest(request->sampling(), sampling_defaults_);
  spec.stop.assign(request->stop().begin(), request->stop().end());
  spec.stop_token_ids.assign(request->stop_token_ids().begin(), request->stop_token_ids().end());
  spec.logprobs = request->logprobs();
  spec.ignore_eos = request->ignore_eos();
  const size_t prompt_tokens = spec.prompt.size();
  absl::StatusOr<std::shared_ptr<RequestStream>> stream = scheduler_->Submit(std::move(spec));
  if (!stream.ok()) {
    Log(absl::StrFormat("request %s refused: %s", id, stream.status().ToString()));
    return ToGrpc(stream.status());
  }
  Log(absl::StrFormat("request %s: %d prompt tokens", id, prompt_tokens));

  RequestEvent e;
  for (;;) {
    if (context->IsCancelled()) {
      (*stream)->Cancel();
      Log(absl::StrFormat("request %s cancelled by the client", id));
      return grpc::Status(grpc::StatusCode::CANCELLED, "request " + id + " cancelled");
    }
    if (!(*stream)->Pop(&e, absl::Milliseconds(50))) continue;
    if (!e.status.ok()) {
      Log(absl::StrFormat("request %s failed: %s", id, e.status.ToString()));
      return ToGrpc(e.status);
    }
    v1::GenerateResponse r;
    r.set_request_id(id);
    r.set_text(e.text);
    r.mutable_token_ids()->Add(e.token_ids.begin(), e.token_ids.end());
    r.mutable_logprobs()->Add(e.logprobs.begin(), e.logprobs.end());
    if (e.final) {
      r.set_finish_reason(FinishReasonOf(e.finish_reason));
      r.mutable_usage()->set_prompt_tokens(e.prompt_tokens);
      r.mutable_usage()->set_completion_tokens(e.completion_tokens);
    }
    if (!writer->Write(r)) {
      (*stream)->Cancel();
      return grpc::Status(grpc::StatusCode::CANCELLED, "request " + id + ": client went away");
    }
    if (e.final) {
      Log(absl::StrFormat("request %s done: %s, %d tokens", id, e.finish_reason,
                          e.completion_tokens));
      return grpc::Status::OK;
    }
  }
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext* /*context*/,
                                        const v1::TokenizeRequest* request,
                                        v1::TokenizeResponse* response) {
  std::vector<int32_t> ids;
  if (request->has_chat()) {
    absl::StatusOr<std::vector<int32_t>> chat = ChatTokens(request->chat(), "tokenize");
    if (!chat.ok()) return ToGrpc(chat.status());
    ids = *std::move(chat);
  } else {
    ids = tokenizer_->Encode(request->text(), request->add_special(), /*parse_special=*/true);
  }
  for (int32_t id : ids) {
    response->add_ids(id);
    response->add_pieces(tokenizer_->TokenToPiece(id, /*render_special=*/true));
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::GetModelInfo(grpc::ServerContext* /*context*/,
                                            const v1::GetModelInfoRequest* /*request*/,
                                            v1::ModelInfo* response) {
  response->set_name(config_->name);
  response->set_architecture(config_->architecture);
  response->set_vocab_size(config_->vocab_size);
  response->set_n_layer(config_->n_layer);
  response->set_context_length(config_->context_length);
  response->set_max_context(max_context_);
  response->set_model_identity(model_identity_);
  membership_->DescribeStages(response);
  *response->mutable_stats() = scheduler_->pipeline_stats();
  const SchedulerStats st = scheduler_->stats();
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
  return grpc::Status::OK;
}

}  // namespace tessera
