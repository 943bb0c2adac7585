#include "coordinator/http/openai_api.h"

#include <random>
#include <utility>
#include <vector>

#include "common/log.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "coordinator/http/openai_request.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using nlohmann::json;

const Logger kLog("http");

// Token pieces may be partial UTF-8; never throw on them.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// One server-sent event, framed as a chunk for HTTP/1.1 clients (an
// HTTP/1.0 one reads the stream up to the connection's close).
std::string SseEvent(const json& j, bool chunked) {
  return FormatChunk("data: " + Dump(j) + "\n\n", chunked);
}

const char* ErrorType(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "invalid_request_error";  // as OpenAI's invalid_api_key
    case 403: return "permission_error";
    case 404: return "invalid_request_error";  // as OpenAI's model_not_found
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status < 500 ? "invalid_request_error" : "server_error";
  }
}

json ErrorJson(int status, const std::string& message, const std::string& param,
               const std::string& code = "") {
  json e = {{"message", message},
            {"type", ErrorType(status)},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", !code.empty()    ? json(code)
                     : status == 429 ? json("rate_limit_exceeded")
                                     : json(nullptr)}};
  return json{{"error", e}};
}

// Holds one of the API's open-request slots until destroyed.
class Slot {
 public:
  explicit Slot(std::shared_ptr<std::atomic<int64_t>> open) : open_(std::move(open)) {}
  ~Slot() {
    if (open_ != nullptr) open_->fetch_sub(1);
  }
  Slot(Slot&&) = default;
  Slot(const Slot&) = delete;

 private:
  std::shared_ptr<std::atomic<int64_t>> open_;
};

// One submitted request, answered as one JSON body or as an SSE stream.
class CompletionResponse final : public PendingResponse {
 public:
  CompletionResponse(std::shared_ptr<RequestStream> stream, Slot slot, const Tokenizer* tokenizer,
                     OpenAiRequest request, std::string id, std::string model, bool keep_alive,
                     bool chunked)
      : stream_(std::move(stream)),
        slot_(std::move(slot)),
        tokenizer_(tokenizer),
        chat_(request.chat),
        streaming_(request.stream),
        logprobs_(request.logprobs),
        id_(std::move(id)),
        model_(std::move(model)),
        created_(absl::ToUnixSeconds(absl::Now())),
        keep_alive_(keep_alive),
        chunked_(chunked) {}

  ~CompletionResponse() override {
    // Gone before its end (server stopping): let the scheduler free it.
    if (!finished_) stream_->Cancel();
    stream_->SetNotifier(nullptr);
  }

  bool Poll(std::string* out) override {
    if (streaming_ && !head_sent_) {
      *out += FormatChunkedHead(200, "text/event-stream", keep_alive_, chunked_);
      head_sent_ = true;
      if (chat_) {
        *out += SseEvent(Chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr), chunked_);
      }
    }
    RequestEvent e;
    while (stream_->TryPop(&e)) {
      if (!e.status.ok()) {
        Fail(e.status, out);
        return true;
      }
      if (streaming_ && (!e.text.empty() || !e.token_ids.empty())) {
        json delta = chat_ ? json{{"content", e.text}} : json(e.text);
        json c = Chunk(delta, nullptr);
        if (logprobs_) {
          c["choices"][0]["logprobs"] =
              Logprobs(e.token_ids, e.logprobs, e.top_logprobs, text_.size());
        }
        *out += SseEvent(c, chunked_);
      }
      if (!streaming_) {
        for (int32_t t : e.token_ids) token_ids_.push_back(t);
        for (float l : e.logprobs) logprobs_values_.push_back(l);
        for (auto& top : e.top_logprobs) top_lists_.push_back(std::move(top));
      }
      text_ += e.text;
      if (e.final) {
        Finish(e, out);
        return true;
      }
    }
    return false;
  }

  void Abort() override {
    stream_->Cancel();
    kLog.ForRequest(id_).Info("cancelled: the HTTP client went away");
  }

 private:
  json Usage(const RequestEvent& e) const {
    return {{"prompt_tokens", e.prompt_tokens},
            {"completion_tokens", e.completion_tokens},
            {"total_tokens", e.prompt_tokens + e.completion_tokens}};
  }

  // A streamed chunk: `delta` is the chat delta object or the completion text.
  json Chunk(const json& delta, const char* finish_reason) const {
    json choice = {{"index", 0}, {"logprobs", nullptr},
                   {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
    choice[chat_ ? "delta" : "text"] = delta;
    return {{"id", id_},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", model_},
            {"choices", json::array({choice})}};
  }

  // The logprobs object of `ids`, with `tops` (one list per id, or none
  // when no alternatives were asked for); `offset` is where their text
  // starts.
  json Logprobs(const std::vector<int32_t>& ids, const std::vector<float>& lps,
                const std::vector<std::vector<TopLogprob>>& tops, size_t offset) const {
    const std::vector<TopLogprob> none;
    auto top_of = [&](size_t i) -> const std::vector<TopLogprob>& {
      return i < tops.size() ? tops[i] : none;
    };
    if (chat_) {
      json content = json::array();
      for (size_t i = 0; i < ids.size(); ++i) {
        // Control tokens are rendered, as in the alternatives, so that an
        // emitted <|im_end|> (ignore_eos) is not a blank.
        const std::string piece = tokenizer_->TokenToPiece(ids[i], /*render_special=*/true);
        json alternatives = json::array();
        for (const TopLogprob& c : top_of(i)) {
          alternatives.push_back(
              {{"token", c.piece}, {"logprob", c.logprob}, {"bytes", Bytes(c.piece)}});
        }
        content.push_back({{"token", piece},
                           {"logprob", i < lps.size() ? lps[i] : 0.0f},
                           {"bytes", Bytes(piece)},
                           {"top_logprobs", std::move(alternatives)}});
      }
      return {{"content", content}};
    }
    json tokens = json::array(), values = json::array(), offsets = json::array();
    json top_maps = json::array();
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string piece = tokenizer_->TokenToPiece(ids[i]);
      const float lp = i < lps.size() ? lps[i] : 0.0f;
      tokens.push_back(piece);
      values.push_back(lp);
      offsets.push_back(offset);
      offset += piece.size();
      // The legacy shape, {text: logprob}. As OpenAI's, it always holds the
      // sampled token, so it has up to N + 1 entries; of two alternatives
      // with the same text the likelier one stays.
      json map = json::object();
      for (const TopLogprob& c : top_of(i)) {
        if (!map.contains(c.piece)) map[c.piece] = c.logprob;
      }
      if (!map.contains(piece)) map[piece] = lp;
      top_maps.push_back(std::move(map));
    }
    return {{"tokens", tokens},
            {"token_logprobs", values},
            {"top_logprobs", top_maps},
            {"text_offset", offsets}};
  }

  static std::vector<int> Bytes(const std::string& piece) {
    std::vector<int> bytes(piece.begin(), piece.end());
    for (int& b : bytes) b &= 0xff;
    return bytes;
  }

  void Finish(const RequestEvent& e, std::string* out) {
    finished_ = true;
    const char* reason = e.finish_reason == "length" ? "length" : "stop";
    kLog.ForRequest(id_).Info("done: %s, %d tokens", reason, e.completion_tokens);
    if (streaming_) {
      json last = Chunk(chat_ ? json::object() : json(""), reason);
      last["usage"] = Usage(e);
      *out += SseEvent(last, chunked_);
      *out += FormatChunk("data: [DONE]\n\n", chunked_) + LastChunk(chunked_);
      return;
    }
    json choice = {{"index", 0}, {"finish_reason", reason},
                   {"logprobs", logprobs_
                                    ? Logprobs(token_ids_, logprobs_values_, top_lists_, 0)
                                    : json(nullptr)}};
    if (chat_) {
      choice["message"] = {{"role", "assistant"}, {"content", text_}};
    } else {
      choice["text"] = text_;
    }
    HttpResponse r;
    r.body = Dump({{"id", id_},
                   {"object", chat_ ? "chat.completion" : "text_completion"},
                   {"created", created_},
                   {"model", model_},
                   {"choices", json::array({choice})},
                   {"usage", Usage(e)}});
    *out += FormatResponse(r, keep_alive_);
  }

  void Fail(const absl::Status& status, std::string* out) {
    finished_ = true;
    kLog.ForRequest(id_).Warning("failed: %s", status.ToString());
    const int code = OpenAiApi::HttpStatusOf(status);
    if (streaming_) {
      // The 200 head is gone; OpenAI's clients read an error event instead.
      *out += SseEvent(ErrorJson(code, std::string(status.message()), ""), chunked_);
      *out += FormatChunk("data: [DONE]\n\n", chunked_) + LastChunk(chunked_);
      return;
    }
    *out += FormatResponse(OpenAiApi::Error(code, std::string(status.message())), keep_alive_);
  }

  std::shared_ptr<RequestStream> stream_;
  Slot slot_;
  const Tokenizer* tokenizer_;
  const bool chat_, streaming_, logprobs_;
  const std::string id_, model_;
  const int64_t created_;
  const bool keep_alive_;
  const bool chunked_;  // HTTP/1.1: chunked SSE; HTTP/1.0: ends at close
  bool head_sent_ = false;
  bool finished_ = false;
  std::string text_;
  std::vector<int32_t> token_ids_;
  std::vector<float> logprobs_values_;
  std::vector<std::vector<TopLogprob>> top_lists_;  // one per token when asked for
};

}  // namespace

OpenAiApi::OpenAiApi(const Tokenizer* tokenizer, Admission* admission, OpenAiOptions options)
    : tokenizer_(tokenizer),
      admission_(admission),
      options_(std::move(options)),
      open_(std::make_shared<std::atomic<int64_t>>(0)) {}

HttpResponse OpenAiApi::Error(int status, const std::string& message, const std::string& param,
                              const std::string& code) {
  HttpResponse r;
  r.status = status;
  r.body = Dump(ErrorJson(status, message, param, code));
  if (status == 429 || status == 503) r.headers.push_back({"Retry-After", "1"});
  if (status == 401) r.headers.push_back({"WWW-Authenticate", "Bearer"});
  return r;
}

HttpResponse OpenAiApi::Error(const absl::Status& status, const std::string& param,
                              const std::string& code) {
  const int http = HttpStatusOf(status);
  HttpResponse r = Error(http, std::string(status.message()), param,
                         !code.empty() || http != 401 ? code : "invalid_api_key");
  // A quota says how long until it would admit this request.
  if (const std::optional<int64_t> wait = RetryAfterSeconds(status); wait.has_value()) {
    for (auto& [name, value] : r.headers) {
      if (name == "Retry-After") value = absl::StrCat(*wait);
    }
  }
  return r;
}

absl::StatusOr<Caller> OpenAiApi::CallerOf(const HttpRequest& request) const {
  const auto it = request.headers.find("authorization");
  return admission_->Authenticate(it == request.headers.end() ? "" : it->second, request.peer,
                                  "http");
}

int OpenAiApi::HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void OpenAiApi::Register(HttpServer* server) {
  server->Route("GET", "/v1/models",
                [this](const HttpRequest& r, const Waker&) { return Models(r); });
  server->Route("POST", "/v1/completions", [this](const HttpRequest& r, const Waker& w) {
    return Complete(r, w, /*chat=*/false);
  });
  server->Route("POST", "/v1/chat/completions", [this](const HttpRequest& r, const Waker& w) {
    return Complete(r, w, /*chat=*/true);
  });
}

HandlerResult OpenAiApi::Models(const HttpRequest& request) const {
  if (absl::StatusOr<Caller> caller = CallerOf(request); !caller.ok()) {
    HandlerResult refused;
    refused.response = Error(caller.status());
    return refused;
  }
  json data = json::array();
  for (const std::string& id : options_.model_ids) {
    data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "tessera"}});
  }
  HandlerResult result;
  result.response.body = Dump({{"object", "list"}, {"data", std::move(data)}});
  return result;
}

HandlerResult OpenAiApi::Complete(const HttpRequest& request, const Waker& waker, bool chat) {
  HandlerResult result;
  // Before the body is even parsed: a stranger costs nothing.
  absl::StatusOr<Caller> caller = CallerOf(request);
  if (!caller.ok()) {
    result.response = Error(caller.status());
    return result;
  }
  std::string param;
  OpenAiParseOptions po;
  po.default_max_tokens =
      chat ? options_.default_chat_max_tokens : options_.default_completion_max_tokens;
  po.model_ids = options_.model_ids;
  absl::StatusOr<OpenAiRequest> parsed = ParseOpenAiRequest(request.body, chat, po, &param);
  if (!parsed.ok()) {
    if (options_.metrics != nullptr) options_.metrics->Rejected(RejectReason::kInvalid);
    const bool no_model = parsed.status().code() == absl::StatusCode::kNotFound;
    result.response = Error(HttpStatusOf(parsed.status()), std::string(parsed.status().message()),
                            param, no_model ? "model_not_found" : "");
    return result;
  }
  // Admission before any scheduler work: past the limit, refuse at once.
  if (open_->fetch_add(1) >= options_.max_streams) {
    open_->fetch_sub(1);
    if (options_.metrics != nullptr) options_.metrics->Rejected(RejectReason::kOverloaded);
    result.response = Error(
        429, absl::StrFormat("too many open requests (limit %d, --http-max-streams); retry later",
                             options_.max_streams));
    return result;
  }
  Slot slot(open_);
  parsed->admission.log_note =
      parsed->ignored_fields.empty()
          ? " (http)"
          : absl::StrCat(" (http); ignored unknown fields: ",
                         absl::StrJoin(parsed->ignored_fields, ", "));
  parsed->admission.caller = *std::move(caller);
  absl::StatusOr<Admitted> admitted = admission_->Admit(parsed->admission);
  if (!admitted.ok()) {
    result.response = Error(admitted.status(), FieldOf(admitted.status()));
    return result;
  }
  const std::string id = admitted->request_id;
  std::shared_ptr<RequestStream> stream = std::move(admitted->stream);
  std::string model = parsed->model;
  // An HTTP/1.0 client has no chunked framing: its stream ends at close.
  const bool chunked = request.http_minor >= 1;
  const bool keep_alive = request.keep_alive && (chunked || !parsed->stream);
  result.close = !keep_alive;
  // Events pushed before this are collected by the server's first Poll.
  stream->SetNotifier(waker);
  result.pending = std::make_unique<CompletionResponse>(stream, std::move(slot), tokenizer_,
                                                        *std::move(parsed), id, std::move(model),
                                                        keep_alive, chunked);
  return result;
}

}  // namespace tessera
