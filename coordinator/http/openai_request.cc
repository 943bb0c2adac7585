#include "coordinator/http/openai_request.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using nlohmann::json;

// Reads an optional field; an error names it. Absent and null are the same.
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
  absl::Status Number(const char* key, double lo, double hi, bool lo_open, float* out) const {
    const json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return Bad(key, "must be a number");
    const double x = v->get<double>();
    if (!std::isfinite(x) || x > hi || x < lo || (lo_open && x == lo)) {
      return Bad(key, absl::StrFormat("%g is out of range %s%g, %g]", x, lo_open ? "(" : "[",
                                      lo, hi));
    }
    *out = static_cast<float>(x);
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

 private:
  const json& j_;
  std::string* param_;
};

// A message's content: a string, or an array of {"type":"text","text":...}
// parts, which are concatenated.
absl::StatusOr<std::string> ContentOf(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (const json& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "messages[%d].content: only text parts ({\"type\":\"text\",\"text\":...}) are "
            "supported",
            index));
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("messages[%d].content must be a string or an array of text parts", index));
}

absl::StatusOr<std::vector<int32_t>> ChatPrompt(const json& messages, const Tokenizer& tokenizer,
                                                std::string* param) {
  *param = "messages";
  if (!messages.is_array() || messages.empty()) {
    return absl::InvalidArgumentError("messages must be a non-empty array");
  }
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("messages[%d] must be an object with a string role", i));
    }
    // Roles are rendered as template text (GLM-4 builds its "<|user|>"
    // token from one), so only the known ones are let through.
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "messages[%d].role = \"%s\"; must be system, user or assistant", i, role));
    }
    std::string content;
    if (m.contains("content") && !m["content"].is_null()) {
      absl::StatusOr<std::string> c = ContentOf(m["content"], i);
      if (!c.ok()) return c.status();
      content = *std::move(c);
    }
    chat.push_back({role, std::move(content)});
  }
  // Contents are encoded as plain text, so a client cannot inject control
  // tokens such as <|im_start|>.
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.EncodeChat(chat, true);
  if (!ids.ok()) {
    return absl::Status(ids.status().code(),
                        absl::StrCat("chat template: ", ids.status().message()));
  }
  *param = "";
  return ids;
}

absl::StatusOr<std::vector<int32_t>> CompletionPrompt(const json* prompt,
                                                      const Tokenizer& tokenizer,
                                                      std::string* param) {
  *param = "prompt";
  const json* text = prompt;
  if (prompt != nullptr && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    text = &(*prompt)[0];
  }
  if (text != nullptr && text->is_string()) {
    const std::string s = text->get<std::string>();
    if (s.empty()) return absl::InvalidArgumentError("prompt is empty");
    *param = "";
    // As in `tessera run` and gRPC Generate, special-token text is honoured.
    return tokenizer.Encode(s, /*add_special=*/true, /*parse_special=*/true);
  }
  if (prompt != nullptr && prompt->is_array() && !prompt->empty()) {
    std::vector<int32_t> ids;
    for (const json& t : *prompt) {
      if (!t.is_number_integer()) {
        return absl::InvalidArgumentError(
            "prompt must be a string, a one-string array or an array of token ids");
      }
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id > INT32_MAX) {
        return absl::InvalidArgumentError(absl::StrFormat("prompt token id %d is invalid", id));
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    *param = "";
    return ids;  // the scheduler checks them against the vocabulary
  }
  return absl::InvalidArgumentError(
      "prompt is required: a string, a one-string array or an array of token ids");
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const std::string& body, bool chat,
                                                 const Tokenizer& tokenizer,
                                                 int32_t default_max_tokens, std::string* param,
                                                 const SamplingDefaults& model_defaults) {
  param->clear();
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  Fields f(j, param);

  OpenAiRequest r;
  r.chat = chat;
  RequestSpec& spec = r.spec;
  SamplingParams& p = spec.sampling;
  p.temperature = 1.0f;
  p.top_p = 1.0f;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.repetition_penalty = 1.0f;
  p = model_defaults.Apply(p);

  int64_t n = 1;
  if (absl::Status s = f.Integer("n", 1, 1000, &n); !s.ok()) return s;
  if (n != 1) return f.Bad("n", "only n = 1 is supported");
  if (absl::Status s = f.Bool("stream", &r.stream); !s.ok()) return s;
  if (absl::Status s = f.Number("temperature", 0, 2, false, &p.temperature); !s.ok()) return s;
  if (absl::Status s = f.Number("top_p", 0, 1, true, &p.top_p); !s.ok()) return s;
  if (absl::Status s = f.Number("min_p", 0, 1, false, &p.min_p); !s.ok()) return s;
  if (absl::Status s = f.Number("repetition_penalty", 0, 100, true, &p.repetition_penalty);
      !s.ok()) {
    return s;
  }
  int64_t top_k = 0;
  if (absl::Status s = f.Integer("top_k", 0, INT32_MAX, &top_k); !s.ok()) return s;
  p.top_k = static_cast<int32_t>(top_k);
  if (const json* seed = f.Get("seed"); seed != nullptr) {
    if (!seed->is_number_integer()) return f.Bad("seed", "must be an integer");
    // Negative seeds are accepted (OpenAI takes any int64); reinterpret.
    p.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
  }
  int64_t max_tokens = default_max_tokens;
  const char* max_key = chat && f.Get("max_completion_tokens") != nullptr
                            ? "max_completion_tokens"
                            : "max_tokens";
  if (absl::Status s = f.Integer(max_key, 1, INT32_MAX, &max_tokens); !s.ok()) return s;
  spec.max_tokens = static_cast<int32_t>(max_tokens);
  if (absl::Status s = f.Bool("ignore_eos", &spec.ignore_eos); !s.ok()) return s;

  if (const json* stop = f.Get("stop"); stop != nullptr) {
    if (stop->is_string()) {
      spec.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& s : *stop) {
        if (!s.is_string()) return f.Bad("stop", "must be a string or an array of strings");
        spec.stop.push_back(s.get<std::string>());
      }
    } else {
      return f.Bad("stop", "must be a string or an array of strings");
    }
    for (const std::string& s : spec.stop) {
      if (s.empty()) return f.Bad("stop", "stop strings must not be empty");
    }
  }

  if (chat) {
    if (absl::Status s = f.Bool("logprobs", &r.logprobs); !s.ok()) return s;
    int64_t top = 0;
    if (absl::Status s = f.Integer("top_logprobs", 0, kRequestTopLogprobsLimit, &top); !s.ok()) {
      return s;
    }
    // As OpenAI: the alternatives come only with the logprobs they belong
    // to. A 0 asks for nothing, so it is let through either way.
    if (top > 0 && !r.logprobs) {
      return f.Bad("top_logprobs", "requires \"logprobs\": true");
    }
    spec.top_logprobs = static_cast<int32_t>(top);
    const json* messages = f.Get("messages");
    if (messages == nullptr) return f.Bad("messages", "is required");
    absl::StatusOr<std::vector<int32_t>> ids = ChatPrompt(*messages, tokenizer, param);
    if (!ids.ok()) return ids.status();
    spec.prompt = *std::move(ids);
  } else {
    // The legacy API's "logprobs" is the count of alternatives per token.
    int64_t logprobs = -1;
    if (absl::Status s = f.Integer("logprobs", 0, kRequestTopLogprobsLimit, &logprobs);
        !s.ok()) {
      return s;
    }
    r.logprobs = logprobs >= 0;
    spec.top_logprobs = static_cast<int32_t>(std::max<int64_t>(logprobs, 0));
    absl::StatusOr<std::vector<int32_t>> ids = CompletionPrompt(f.Get("prompt"), tokenizer, param);
    if (!ids.ok()) return ids.status();
    spec.prompt = *std::move(ids);
  }
  spec.logprobs = r.logprobs;
  return r;
}

}  // namespace tessera
