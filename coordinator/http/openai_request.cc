#include "coordinator/http/openai_request.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using nlohmann::json;

// Every top-level field the parser reads, honours or refuses; anything else
// is reported in OpenAiRequest::ignored_fields.
const absl::flat_hash_set<std::string>& KnownFields() {
  static const auto* known = new absl::flat_hash_set<std::string>{
      // honoured
      "model", "stream", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed",
      "max_tokens", "max_completion_tokens", "stop", "stop_token_ids", "ignore_eos", "logprobs",
      "top_logprobs", "n", "messages", "prompt",
      // accepted, no effect on the output (see the README)
      "user", "metadata", "store", "service_tier", "stream_options", "parallel_tool_calls",
      // refused unless set to their no-op value
      "tools", "tool_choice", "functions", "function_call", "response_format", "logit_bias",
      "presence_penalty", "frequency_penalty", "best_of", "echo", "suffix", "prediction",
      "audio", "modalities", "web_search_options"};
  return *known;
}

// Reads optional fields of one JSON object; an error names the field.
// Absent and null are the same.
class Fields {
 public:
  Fields(const json& j, std::string* param) : j_(j), param_(param) {}

  const json* Get(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  absl::Status Bad(const char* key, const std::string& what) const {
    *param_ = key;
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", key, what));
  }
  // A number; its range is ValidateRequestSpec's to check.
  absl::Status Number(const char* key, float* out) const {
    const json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return Bad(key, "must be a number");
    *out = static_cast<float>(v->get<double>());
    return absl::OkStatus();
  }
  absl::Status Integer(const char* key, int64_t lo, int64_t hi, int64_t* out) const {
    const json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number_integer()) return Bad(key, "must be an integer");
    const int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX
                          ? INT64_MAX
                          : v->get<int64_t>();
    if (x < lo || x > hi) {
      return Bad(key, absl::StrFormat("%d is out of range [%d, %d]", x, lo, hi));
    }
    *out = x;
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool* out) const {
    const json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return Bad(key, "must be true or false");
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  // Refuses `key` unless it is absent or `is_noop` holds for its value.
  template <typename Pred>
  absl::Status Unsupported(const char* key, Pred is_noop, const char* what) const {
    const json* v = Get(key);
    if (v == nullptr || is_noop(*v)) return absl::OkStatus();
    return Bad(key, absl::StrCat(what, " is not supported by this server"));
  }

 private:
  const json& j_;
  std::string* param_;
};

bool IsZero(const json& v) { return v.is_number() && v.get<double>() == 0.0; }
bool IsEmptyContainer(const json& v) { return (v.is_array() || v.is_object()) && v.empty(); }

// Fields whose meaning Tessera does not implement: honouring them silently
// as if absent would answer a different request than the one asked.
absl::Status RefuseUnsupported(const Fields& f) {
  RETURN_IF_ERROR(f.Unsupported("tools", IsEmptyContainer, "tool calling"));
  RETURN_IF_ERROR(f.Unsupported(
      "tool_choice",
      [](const json& v) { return v.is_string() && (v == "none" || v == "auto"); },
      "tool calling"));
  RETURN_IF_ERROR(f.Unsupported("functions", IsEmptyContainer, "function calling"));
  RETURN_IF_ERROR(f.Unsupported(
      "function_call", [](const json& v) { return v.is_string() && (v == "none" || v == "auto"); },
      "function calling"));
  RETURN_IF_ERROR(f.Unsupported(
      "response_format",
      [](const json& v) {
        if (!v.is_object()) return false;
        auto t = v.find("type");
        return t != v.end() && t->is_string() && *t == "text";
      },
      "structured output (response_format other than {\"type\": \"text\"})"));
  RETURN_IF_ERROR(f.Unsupported("logit_bias", IsEmptyContainer, "logit_bias"));
  RETURN_IF_ERROR(f.Unsupported("presence_penalty", IsZero,
                                "presence_penalty other than 0 (use repetition_penalty)"));
  RETURN_IF_ERROR(f.Unsupported("frequency_penalty", IsZero,
                                "frequency_penalty other than 0 (use repetition_penalty)"));
  RETURN_IF_ERROR(f.Unsupported(
      "best_of", [](const json& v) { return v.is_number_integer() && v.get<int64_t>() == 1; },
      "best_of other than 1"));
  RETURN_IF_ERROR(f.Unsupported(
      "echo", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }, "echo"));
  RETURN_IF_ERROR(f.Unsupported(
      "suffix", [](const json& v) { return v.is_string() && v.get_ref<const std::string&>().empty(); },
      "suffix (insertion)"));
  RETURN_IF_ERROR(f.Unsupported("prediction", [](const json&) { return false; },
                                "predicted output"));
  RETURN_IF_ERROR(f.Unsupported("audio", [](const json&) { return false; }, "audio output"));
  RETURN_IF_ERROR(f.Unsupported(
      "modalities", [](const json& v) { return v == json::array({"text"}); },
      "modalities other than [\"text\"]"));
  RETURN_IF_ERROR(f.Unsupported("web_search_options", [](const json&) { return false; },
                                "web search"));
  return absl::OkStatus();
}

// A message's content: a string, or an array of {"type":"text","text":...}
// parts, which are concatenated.
absl::StatusOr<std::string> ContentOf(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (size_t k = 0; k < content.size(); ++k) {
      const json& part = content[k];
      const json* type = nullptr;
      const json* part_text = nullptr;
      if (part.is_object()) {
        auto t = part.find("type");
        if (t != part.end()) type = &*t;
        auto x = part.find("text");
        if (x != part.end()) part_text = &*x;
      }
      if (type == nullptr || !type->is_string() || *type != "text" || part_text == nullptr ||
          !part_text->is_string()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "messages[%d].content[%d]: only text parts ({\"type\":\"text\",\"text\":...}) are "
            "supported",
            index, k));
      }
      text += part_text->get_ref<const std::string&>();
    }
    return text;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("messages[%d].content must be a string or an array of text parts", index));
}

absl::StatusOr<ChatPromptMessages> ChatPrompt(const json& messages, std::string* param) {
  *param = "messages";
  if (!messages.is_array() || messages.empty()) {
    return absl::InvalidArgumentError("messages must be a non-empty array");
  }
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    auto role = m.is_object() ? m.find("role") : m.end();
    if (!m.is_object() || role == m.end() || !role->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("messages[%d] must be an object with a string role", i));
    }
    if (auto calls = m.find("tool_calls");
        calls != m.end() && !calls->is_null() && !IsEmptyContainer(*calls)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "messages[%d].tool_calls: tool calling is not supported by this server", i));
    }
    std::string content;
    if (auto c = m.find("content"); c != m.end() && !c->is_null()) {
      ASSIGN_OR_RETURN(content, ContentOf(*c, i));
    }
    chat.push_back({role->get<std::string>(), std::move(content)});
  }
  *param = "";
  // Roles and the template are admission's to check (ChatPromptIds).
  return ChatPromptMessages{std::move(chat), "messages"};
}

absl::StatusOr<Prompt> CompletionPrompt(const json* prompt, std::string* param) {
  *param = "prompt";
  const json* text = prompt;
  if (prompt != nullptr && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    text = &(*prompt)[0];
  }
  if (text != nullptr && text->is_string()) {
    *param = "";
    // Admission refuses an empty one and encodes the rest with special-token
    // text honoured, as gRPC Generate and `tessera run` do.
    return Prompt(TextPrompt{text->get<std::string>(), "prompt"});
  }
  if (prompt != nullptr && prompt->is_array() && !prompt->empty()) {
    std::vector<int32_t> ids;
    for (const json& t : *prompt) {
      if (!t.is_number_integer()) {
        return absl::InvalidArgumentError(
            "prompt must be a string, a one-string array or an array of token ids");
      }
      const int64_t id = t.is_number_unsigned() && t.get<uint64_t>() > INT64_MAX
                             ? INT64_MAX
                             : t.get<int64_t>();
      if (id < 0 || id > INT32_MAX) {
        return absl::InvalidArgumentError(absl::StrFormat("prompt token id %d is invalid", id));
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    *param = "";
    return Prompt(IdsPrompt{std::move(ids)});  // the scheduler checks them against the vocabulary
  }
  return absl::InvalidArgumentError(
      "prompt is required: a string, a one-string array or an array of token ids");
}

absl::StatusOr<std::vector<std::string>> StopStrings(const Fields& f) {
  std::vector<std::string> stop;
  const json* v = f.Get("stop");
  if (v == nullptr) return stop;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
    return stop;
  }
  if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) return f.Bad("stop", "must be a string or an array of strings");
      stop.push_back(s.get<std::string>());
    }
    return stop;  // ValidateRequestSpec refuses empty ones
  }
  return f.Bad("stop", "must be a string or an array of strings");
}

// A float field, kept only when the body sets it.
absl::Status OptionalNumber(const Fields& f, const char* key, std::optional<float>* out) {
  if (f.Get(key) == nullptr) return absl::OkStatus();
  float v = 0;
  RETURN_IF_ERROR(f.Number(key, &v));
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<OpenAiRequest> Parse(const json& j, bool chat, const OpenAiParseOptions& options,
                                    std::string* param) {
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  Fields f(j, param);

  OpenAiRequest r;
  r.chat = chat;
  if (const json* model = f.Get("model"); model != nullptr) {
    if (!model->is_string()) return f.Bad("model", "must be a string");
    r.model = model->get<std::string>();
    const std::vector<std::string>& ids = options.model_ids;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), r.model) == ids.end()) {
      *param = "model";
      return absl::NotFoundError(absl::StrFormat(
          "The model `%s` does not exist; this server serves %s", r.model,
          absl::StrJoin(ids, ", ", [](std::string* out, const std::string& id) {
            absl::StrAppend(out, "`", id, "`");
          })));
    }
  }
  if (r.model.empty() && !options.model_ids.empty()) r.model = options.model_ids.front();
  RETURN_IF_ERROR(RefuseUnsupported(f));
  for (const auto& [key, value] : j.items()) {
    if (!KnownFields().contains(key)) r.ignored_fields.push_back(key);
  }

  AdmissionRequest& spec = r.admission;
  spec.id_prefix = chat ? "chatcmpl" : "cmpl";
  // OpenAI's documented defaults, for what neither the body nor the model
  // sets.
  SamplingParams& api = spec.api_defaults;
  api.temperature = 1.0f;
  api.top_p = 1.0f;
  api.top_k = 0;
  api.min_p = 0.0f;
  api.repetition_penalty = 1.0f;
  SamplingDefaults& p = spec.sampling;

  int64_t n = 1;
  RETURN_IF_ERROR(f.Integer("n", 1, 1000, &n));
  if (n != 1) return f.Bad("n", "only n = 1 is supported");
  RETURN_IF_ERROR(f.Bool("stream", &r.stream));
  RETURN_IF_ERROR(OptionalNumber(f, "temperature", &p.temperature));
  RETURN_IF_ERROR(OptionalNumber(f, "top_p", &p.top_p));
  RETURN_IF_ERROR(OptionalNumber(f, "min_p", &p.min_p));
  RETURN_IF_ERROR(OptionalNumber(f, "repetition_penalty", &p.repetition_penalty));
  if (f.Get("top_k") != nullptr) {
    int64_t top_k = 0;
    RETURN_IF_ERROR(f.Integer("top_k", INT32_MIN, INT32_MAX, &top_k));
    p.top_k = static_cast<int32_t>(top_k);
  }
  if (const json* seed = f.Get("seed"); seed != nullptr) {
    if (!seed->is_number_integer()) return f.Bad("seed", "must be an integer");
    // Negative seeds are accepted (OpenAI takes any int64); reinterpret.
    p.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
  }
  int64_t max_tokens = options.default_max_tokens;
  const char* max_key = chat && f.Get("max_completion_tokens") != nullptr
                            ? "max_completion_tokens"
                            : "max_tokens";
  // OpenAI's rule; gRPC also takes 0 (the prompt's usage and nothing else).
  RETURN_IF_ERROR(f.Integer(max_key, 1, INT32_MAX, &max_tokens));
  spec.max_tokens = static_cast<int32_t>(max_tokens);
  RETURN_IF_ERROR(f.Bool("ignore_eos", &spec.ignore_eos));
  ASSIGN_OR_RETURN(spec.stop, StopStrings(f));
  if (const json* ids = f.Get("stop_token_ids"); ids != nullptr) {
    if (!ids->is_array()) return f.Bad("stop_token_ids", "must be an array of token ids");
    for (const json& t : *ids) {
      if (!t.is_number_integer() || t.get<int64_t>() < INT32_MIN ||
          t.get<int64_t>() > INT32_MAX) {
        return f.Bad("stop_token_ids", "must be an array of token ids");
      }
      spec.stop_token_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }

  if (chat) {
    RETURN_IF_ERROR(f.Bool("logprobs", &r.logprobs));
    int64_t top = 0;
    RETURN_IF_ERROR(f.Integer("top_logprobs", 0, kMaxTopLogprobs, &top));
    // As OpenAI: the alternatives come only with the logprobs they belong
    // to. A 0 asks for nothing, so it is let through either way.
    if (top > 0 && !r.logprobs) {
      return f.Bad("top_logprobs", "requires \"logprobs\": true");
    }
    spec.top_logprobs = static_cast<int32_t>(top);
    const json* messages = f.Get("messages");
    if (messages == nullptr) return f.Bad("messages", "is required");
    ASSIGN_OR_RETURN(ChatPromptMessages messages_prompt, ChatPrompt(*messages, param));
    spec.prompt = std::move(messages_prompt);
  } else {
    // The legacy API's "logprobs" is the count of alternatives per token.
    int64_t logprobs = -1;
    RETURN_IF_ERROR(f.Integer("logprobs", 0, kMaxTopLogprobs, &logprobs));
    r.logprobs = logprobs >= 0;
    spec.top_logprobs = static_cast<int32_t>(std::max<int64_t>(logprobs, 0));
    ASSIGN_OR_RETURN(spec.prompt, CompletionPrompt(f.Get("prompt"), param));
  }
  spec.logprobs = r.logprobs;
  return r;
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const std::string& body, bool chat,
                                                 const OpenAiParseOptions& options,
                                                 std::string* param) {
  param->clear();
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  // Every access above checks types first; this catch is the guarantee that
  // a case they miss is a 400 for this request, never an abort of the
  // process and every stream in it.
  try {
    return Parse(j, chat, options, param);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(param->empty() ? "the request" : *param, ": malformed: ", e.what()));
  }
}

}  // namespace tessera
