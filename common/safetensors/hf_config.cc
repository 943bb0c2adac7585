#include "common/safetensors/hf_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

constexpr char kSupportedHfArchitectures[] =
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Glm4ForCausalLM";

// Reads keys of one config.json object and words errors with the file and the
// (dotted) key.
class HfKeys {
 public:
  HfKeys(const std::string& path, const nlohmann::json& obj, std::string prefix = "")
      : path_(path), obj_(obj), prefix_(std::move(prefix)) {}

  absl::Status Invalid(const std::string& key, const std::string& detail) const {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": key '", prefix_, key, "' ", detail));
  }

  const std::string& path() const { return path_; }

  // Absent or null.
  bool Has(const std::string& key) const {
    auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }

  absl::StatusOr<int> PositiveInt(const std::string& key) const {
    if (!Has(key)) return Invalid(key, "is missing");
    const nlohmann::json& v = obj_.at(key);
    if (!v.is_number_integer()) return Invalid(key, absl::StrCat("is ", Dump(v), "; expected an integer"));
    // is_number_integer covers unsigned; compare in the widest signed/unsigned form.
    const bool positive = v.is_number_unsigned() ? v.get<uint64_t>() > 0 : v.get<int64_t>() > 0;
    if (!positive || (v.is_number_unsigned() &&
                      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) ||
        (!v.is_number_unsigned() && v.get<int64_t>() > std::numeric_limits<int>::max())) {
      return Invalid(key, absl::StrCat("is ", Dump(v), "; expected 1 to ",
                                       std::numeric_limits<int>::max()));
    }
    return static_cast<int>(v.get<int64_t>());
  }
  absl::StatusOr<int> PositiveIntOr(const std::string& key, int fallback) const {
    if (!Has(key)) return fallback;
    return PositiveInt(key);
  }

  absl::StatusOr<double> PositiveFloat(const std::string& key) const {
    if (!Has(key)) return Invalid(key, "is missing");
    const nlohmann::json& v = obj_.at(key);
    if (!v.is_number()) return Invalid(key, absl::StrCat("is ", Dump(v), "; expected a number"));
    const double d = v.get<double>();
    if (!(d > 0) || !std::isfinite(d) || d > std::numeric_limits<float>::max()) {
      return Invalid(key, absl::StrCat("is ", Dump(v), "; expected a finite positive number"));
    }
    return d;
  }
  absl::StatusOr<double> PositiveFloatOr(const std::string& key, double fallback) const {
    if (!Has(key)) return fallback;
    return PositiveFloat(key);
  }

  absl::StatusOr<bool> BoolOr(const std::string& key, bool fallback) const {
    if (!Has(key)) return fallback;
    const nlohmann::json& v = obj_.at(key);
    if (!v.is_boolean()) return Invalid(key, absl::StrCat("is ", Dump(v), "; expected true or false"));
    return v.get<bool>();
  }

  static std::string Dump(const nlohmann::json& v) {
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

 private:
  const std::string& path_;
  const nlohmann::json& obj_;
  std::string prefix_;
};

// The flags that set qwen2 and glm4 apart (model_config.h), and the keys that
// would change the graph in ways this engine does not run.
absl::Status ReadHfArchitectureFeatures(const HfKeys& k, const std::string& arch,
                                        ModelConfig* c) {
  if (c->architecture == "qwen2") {
    c->rope_neox = true;
    c->qkv_bias = true;
    ASSIGN_OR_RETURN(bool sliding, k.BoolOr("use_sliding_window", false));
    if (sliding) {
      return absl::UnimplementedError(absl::StrCat(
          k.path(), ": key 'use_sliding_window' is true; sliding-window attention is not "
                    "supported"));
    }
  } else if (c->architecture == "glm4") {
    c->post_norms = true;
    c->fused_gate_up = true;
    ASSIGN_OR_RETURN(c->qkv_bias, k.BoolOr("attention_bias", true));
    ASSIGN_OR_RETURN(double partial, k.PositiveFloatOr("partial_rotary_factor", 0.5));
    const double rot = c->head_dim * partial;
    if (partial > 1 || rot != static_cast<int>(rot) || static_cast<int>(rot) % 2 != 0) {
      return k.Invalid("partial_rotary_factor",
                       absl::StrCat("is ", partial, "; head_dim ", c->head_dim,
                                    " times it must be an even number of dims, at most head_dim"));
    }
    c->rope_dim = static_cast<int>(rot);
  } else {
    ASSIGN_OR_RETURN(bool bias, k.BoolOr("attention_bias", false));
    if (bias) {
      return absl::UnimplementedError(absl::StrCat(
          k.path(), ": key 'attention_bias' is true; Llama attention biases (which include the "
                    "output projection) are not supported"));
    }
    ASSIGN_OR_RETURN(bool mlp_bias, k.BoolOr("mlp_bias", false));
    if (mlp_bias) {
      return absl::UnimplementedError(
          absl::StrCat(k.path(), ": key 'mlp_bias' is true; MLP biases are not supported"));
    }
  }
  if (arch == "MistralForCausalLM" && k.Has("sliding_window")) {
    // Mistral 7B v0.1 attends within a 4096-token window. Within the window
    // that is ordinary causal attention, so cap the context there rather
    // than compute something else beyond it.
    ASSIGN_OR_RETURN(int window, k.PositiveInt("sliding_window"));
    c->context_length = std::min<int64_t>(c->context_length, window);
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<float> Llama3RopeFreqFactors(int rot_dim, double rope_theta, double factor,
                                         double low_freq_factor, double high_freq_factor,
                                         double original_max_position_embeddings) {
  const double kPi = 3.14159265358979323846;
  const double low_freq_wavelen = original_max_position_embeddings / low_freq_factor;
  const double high_freq_wavelen = original_max_position_embeddings / high_freq_factor;
  std::vector<float> out;
  out.reserve(rot_dim / 2);
  for (int i = 0; i < rot_dim / 2; ++i) {
    const double inv_freq = std::pow(rope_theta, -2.0 * i / rot_dim);
    const double wavelen = 2 * kPi / inv_freq;
    double divisor;
    if (wavelen < high_freq_wavelen) {
      divisor = 1.0;  // high frequencies: unchanged
    } else if (wavelen > low_freq_wavelen) {
      divisor = factor;  // low frequencies: fully scaled
    } else {
      const double smooth = (original_max_position_embeddings / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      divisor = 1.0 / ((1 - smooth) / factor + smooth);
    }
    out.push_back(static_cast<float>(divisor));
  }
  return out;
}

absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const std::string& config_json_path) {
  const std::string& path = config_json_path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  HfKeys k(path, root);

  auto archs = root.find("architectures");
  if (archs == root.end() || !archs->is_array() || archs->empty() ||
      !(*archs)[0].is_string()) {
    return k.Invalid("architectures", "is missing or not a non-empty array of strings");
  }
  const std::string arch = (*archs)[0].get<std::string>();
  ModelConfig c;
  if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM") {
    c.architecture = "llama";
  } else if (arch == "Qwen2ForCausalLM") {
    c.architecture = "qwen2";
  } else if (arch == "Glm4ForCausalLM") {
    c.architecture = "glm4";
  } else {
    return absl::UnimplementedError(absl::StrCat(path, ": unsupported architecture '", arch,
                                                 "'; supported: ", kSupportedHfArchitectures));
  }
  if (root.contains("_name_or_path") && root["_name_or_path"].is_string()) {
    c.name = root["_name_or_path"].get<std::string>();
  }
  ASSIGN_OR_RETURN(c.n_embd, k.PositiveInt("hidden_size"));
  ASSIGN_OR_RETURN(c.n_ff, k.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(c.n_head, k.PositiveInt("num_attention_heads"));
  ASSIGN_OR_RETURN(c.n_kv_head, k.PositiveIntOr("num_key_value_heads", c.n_head));
  ASSIGN_OR_RETURN(c.n_layer, k.PositiveInt("num_hidden_layers"));
  ASSIGN_OR_RETURN(double eps, k.PositiveFloat("rms_norm_eps"));
  c.rms_eps = static_cast<float>(eps);
  ASSIGN_OR_RETURN(double theta, k.PositiveFloatOr("rope_theta", 10000.0));
  c.rope_freq_base = static_cast<float>(theta);
  ASSIGN_OR_RETURN(int vocab, k.PositiveInt("vocab_size"));
  c.vocab_size = vocab;
  ASSIGN_OR_RETURN(int ctx, k.PositiveInt("max_position_embeddings"));
  c.context_length = ctx;
  ASSIGN_OR_RETURN(c.tied_embeddings, k.BoolOr("tie_word_embeddings", false));

  if (c.n_head % c.n_kv_head != 0) {
    return k.Invalid("num_key_value_heads",
                     absl::StrCat("is ", c.n_kv_head, ", which does not divide ",
                                  "num_attention_heads = ", c.n_head));
  }
  if (!k.Has("head_dim") && c.n_embd % c.n_head != 0) {
    return k.Invalid("num_attention_heads", absl::StrCat("is ", c.n_head, ", which does not divide ",
                                                         "hidden_size = ", c.n_embd));
  }
  ASSIGN_OR_RETURN(c.head_dim, k.PositiveIntOr("head_dim", c.n_embd / c.n_head));
  if (c.head_dim % 2 != 0) {
    return k.Invalid("head_dim", absl::StrCat("is ", c.head_dim, "; RoPE needs an even head size"));
  }
  // Real models use 64 to 256; the bound keeps a corrupt file from asking for
  // gigabytes of RoPE tables before any tensor is checked.
  constexpr int kMaxHeadDim = 4096;
  if (c.head_dim > kMaxHeadDim) {
    return k.Invalid(k.Has("head_dim") ? "head_dim" : "hidden_size",
                     absl::StrCat("gives a head size of ", c.head_dim, "; at most ", kMaxHeadDim,
                                  " is supported"));
  }
  if (static_cast<int64_t>(c.head_dim) * c.n_head != c.n_embd) {
    // The Llama graph we run ties the head size to hidden_size / heads.
    return absl::UnimplementedError(absl::StrCat(
        path, ": key 'head_dim' is ", c.head_dim, "; only head sizes equal to hidden_size / ",
        "num_attention_heads are supported"));
  }
  c.rope_dim = c.head_dim;
  RETURN_IF_ERROR(ReadHfArchitectureFeatures(k, arch, &c));

  if (k.Has("rope_scaling")) {
    const nlohmann::json& rs = root["rope_scaling"];
    if (!rs.is_object()) return k.Invalid("rope_scaling", "is not an object");
    HfKeys r(path, rs, "rope_scaling.");
    std::string type_key = rs.contains("rope_type") ? "rope_type" : "type";
    if (!r.Has(type_key) || !rs[type_key].is_string()) {
      return r.Invalid("rope_type", "is missing or not a string");
    }
    if (rs.contains("rope_type") && rs.contains("type") && rs["type"] != rs["rope_type"]) {
      return r.Invalid("type", absl::StrCat("is ", HfKeys::Dump(rs["type"]),
                                            " but rope_type is ", HfKeys::Dump(rs["rope_type"])));
    }
    const std::string type = rs[type_key].get<std::string>();
    if (type == "linear") {
      ASSIGN_OR_RETURN(double factor, r.PositiveFloat("factor"));
      c.rope_freq_scale = static_cast<float>(1.0 / factor);
    } else if (type == "llama3") {
      ASSIGN_OR_RETURN(double factor, r.PositiveFloat("factor"));
      ASSIGN_OR_RETURN(double low, r.PositiveFloat("low_freq_factor"));
      ASSIGN_OR_RETURN(double high, r.PositiveFloat("high_freq_factor"));
      ASSIGN_OR_RETURN(int orig, r.PositiveInt("original_max_position_embeddings"));
      if (!(high > low)) {
        return r.Invalid("high_freq_factor",
                         absl::StrCat("is ", high, "; must exceed low_freq_factor = ", low));
      }
      c.has_rope_freqs = true;
      c.rope_freq_factors = Llama3RopeFreqFactors(c.rope_dim, theta, factor, low, high, orig);
    } else if (type != "default") {
      return absl::UnimplementedError(
          absl::StrCat(path, ": key 'rope_scaling.", type_key, "' is '", type,
                       "'; supported: default, linear, llama3"));
    }
  }
  return c;
}

}  // namespace tessera
