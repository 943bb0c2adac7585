#include "common/model_config.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

// Reads "{arch}.*" keys of one file and words errors with the file and key.
class HyperParams {
 public:
  HyperParams(const GgufFile& file, std::string arch) : f_(file), arch_(std::move(arch)) {}

  std::string Key(const std::string& suffix) const { return absl::StrCat(arch_, ".", suffix); }

  absl::Status Invalid(const std::string& key, const std::string& detail) const {
    return absl::InvalidArgumentError(
        absl::StrCat(f_.path(), ": metadata key '", key, "' ", detail));
  }

  // A required positive integer that fits in `int`.
  absl::StatusOr<int> PositiveInt(const std::string& suffix) const {
    const std::string key = Key(suffix);
    ASSIGN_OR_RETURN(uint64_t v, f_.GetUint(key));
    if (v == 0 || v > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      return Invalid(key,
                     absl::StrCat("is ", v, "; expected 1 to ", std::numeric_limits<int>::max()));
    }
    return static_cast<int>(v);
  }

  absl::StatusOr<int> PositiveIntOr(const std::string& suffix, int fallback) const {
    if (!f_.Has(Key(suffix))) return fallback;
    return PositiveInt(suffix);
  }

  // A required finite, positive float.
  absl::StatusOr<float> PositiveFloat(const std::string& suffix) const {
    const std::string key = Key(suffix);
    ASSIGN_OR_RETURN(double v, f_.GetFloat(key));
    // Checked in double first: narrowing an out-of-range double is undefined.
    if (!(v > 0) || v > std::numeric_limits<float>::max() || !(static_cast<float>(v) > 0)) {
      return Invalid(key, absl::StrCat("is ", v, "; expected a finite positive float"));
    }
    return static_cast<float>(v);
  }

  absl::StatusOr<float> PositiveFloatOr(const std::string& suffix, float fallback) const {
    if (!f_.Has(Key(suffix))) return fallback;
    return PositiveFloat(suffix);
  }

 private:
  const GgufFile& f_;
  std::string arch_;
};

absl::Status InvalidTensor(const GgufFile& f, const std::string& tensor,
                           const std::string& detail) {
  return absl::InvalidArgumentError(absl::StrCat(f.path(), ": tensor '", tensor, "' ", detail));
}

std::string ShapeString(const GgufTensorInfo& t) {
  return absl::StrCat("[", absl::StrJoin(t.shape, ", "), "]");
}

// RoPE position scaling. llama.cpp treats a scaling factor without a type as
// linear, and a factor of 0 as "no scaling"; we do the same so that files
// behave identically.
absl::StatusOr<float> RopeFreqScale(const GgufFile& f, const HyperParams& hp) {
  const std::string type_key = hp.Key("rope.scaling.type");
  const std::string factor_key = hp.Key("rope.scaling.factor");
  const std::string legacy_key = hp.Key("rope.scale_linear");
  std::string type = "none";
  double factor = 0;
  if (f.Has(factor_key)) {
    ASSIGN_OR_RETURN(factor, f.GetFloat(factor_key));
    type = "linear";
  } else if (f.Has(legacy_key)) {
    ASSIGN_OR_RETURN(factor, f.GetFloat(legacy_key));
    type = "linear";
  }
  if (f.Has(type_key)) {
    ASSIGN_OR_RETURN(type, f.GetString(type_key));
  }
  if (type == "none") return 1.0f;
  if (type != "linear") {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": metadata key '", type_key, "' is '",
                                                 type, "'; supported RoPE scaling: none, linear"));
  }
  if (factor == 0) return 1.0f;
  if (!(factor > 0) || !std::isfinite(factor) || 1.0 / factor > std::numeric_limits<float>::max()) {
    return hp.Invalid(f.Has(factor_key) ? factor_key : legacy_key,
                      absl::StrCat("is ", factor, "; expected a positive scaling factor"));
  }
  return static_cast<float>(1.0 / factor);
}

// Sets the feature flags that distinguish qwen2 and glm4 from llama. The
// optional tensors are judged from layer 0; ModelWeights then requires them
// in every layer, so a file that has them in some layers only fails there.
absl::Status ReadArchitectureFeatures(const GgufFile& f, ModelConfig* c) {
  const bool qwen2 = c->architecture == "qwen2";
  const bool glm4 = c->architecture == "glm4";
  c->rope_neox = qwen2;
  c->post_norms = glm4;
  c->fused_gate_up = glm4;
  c->fused_qkv = glm4 && f.FindTensor("blk.0.attn_qkv.weight") != nullptr;
  c->qkv_bias = qwen2 || f.FindTensor("blk.0.attn_q.bias") != nullptr ||
                f.FindTensor("blk.0.attn_qkv.bias") != nullptr;
  // Tensors this engine would otherwise silently ignore.
  for (const char* name : {"blk.0.attn_output.bias", "blk.0.ffn_up.bias", "blk.0.ffn_down.bias",
                           "blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"}) {
    if (f.FindTensor(name) != nullptr) {
      return absl::UnimplementedError(absl::StrCat(
          f.path(), ": tensor '", name, "' is not supported by the ", c->architecture,
          " graph this engine runs"));
    }
  }
  if (!glm4 && f.FindTensor("blk.0.attn_qkv.weight") != nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        f.path(), ": tensor 'blk.0.attn_qkv.weight' (fused Q/K/V) is supported for glm4 only"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file) {
  ModelConfig c;
  ASSIGN_OR_RETURN(c.architecture, file.GetString("general.architecture"));
  if (c.architecture != "llama" && c.architecture != "qwen2" && c.architecture != "glm4") {
    return absl::UnimplementedError(absl::StrCat("unsupported architecture '", c.architecture,
                                                 "' in ", file.path(),
                                                 "; supported: ", kSupportedArchitectures));
  }
  if (file.Has("general.name")) {
    ASSIGN_OR_RETURN(c.name, file.GetString("general.name"));
  }
  HyperParams hp(file, c.architecture);

  ASSIGN_OR_RETURN(c.n_layer, hp.PositiveInt("block_count"));
  ASSIGN_OR_RETURN(c.n_embd, hp.PositiveInt("embedding_length"));
  ASSIGN_OR_RETURN(c.n_ff, hp.PositiveInt("feed_forward_length"));
  ASSIGN_OR_RETURN(c.n_head, hp.PositiveInt("attention.head_count"));
  ASSIGN_OR_RETURN(c.n_kv_head, hp.PositiveIntOr("attention.head_count_kv", c.n_head));
  ASSIGN_OR_RETURN(c.context_length, hp.PositiveInt("context_length"));
  ASSIGN_OR_RETURN(c.rms_eps, hp.PositiveFloat("attention.layer_norm_rms_epsilon"));
  ASSIGN_OR_RETURN(c.rope_freq_base, hp.PositiveFloatOr("rope.freq_base", 10000.0f));
  ASSIGN_OR_RETURN(c.rope_freq_scale, RopeFreqScale(file, hp));

  if (c.n_embd % c.n_head != 0) {
    return hp.Invalid(hp.Key("attention.head_count"),
                      absl::StrCat("is ", c.n_head, ", which does not divide ",
                                   hp.Key("embedding_length"), " = ", c.n_embd));
  }
  if (c.n_head % c.n_kv_head != 0) {
    return hp.Invalid(hp.Key("attention.head_count_kv"),
                      absl::StrCat("is ", c.n_kv_head, ", which does not divide ",
                                   hp.Key("attention.head_count"), " = ", c.n_head));
  }
  c.head_dim = c.n_embd / c.n_head;
  // Some architectures decouple the head size from n_embd / n_head; the
  // Llama graph we run does not, so say so rather than compute garbage.
  for (const char* suffix : {"attention.key_length", "attention.value_length"}) {
    if (!file.Has(hp.Key(suffix))) continue;
    ASSIGN_OR_RETURN(int v, hp.PositiveInt(suffix));
    if (v != c.head_dim) {
      return absl::UnimplementedError(
          absl::StrCat(file.path(), ": metadata key '", hp.Key(suffix), "' is ", v,
                       "; only head sizes equal to embedding_length / head_count (", c.head_dim,
                       ") are supported"));
    }
  }
  ASSIGN_OR_RETURN(c.rope_dim, hp.PositiveIntOr("rope.dimension_count", c.head_dim));
  if (c.rope_dim % 2 != 0 || c.rope_dim > c.head_dim) {
    return hp.Invalid(hp.Key("rope.dimension_count"),
                      absl::StrCat("is ", c.rope_dim,
                                   "; expected an even number no larger than "
                                   "the head size ",
                                   c.head_dim));
  }

  // Vocabulary: the explicit key, else the tokenizer's token list, else the
  // embedding's shape; whichever are present must agree.
  const GgufTensorInfo* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": tensor 'token_embd.weight' is missing"));
  }
  if (embd->shape.size() != 2 || embd->shape[0] != c.n_embd) {
    return InvalidTensor(
        file, embd->name,
        absl::StrCat("has shape ", ShapeString(*embd), "; expected [", hp.Key("embedding_length"),
                     " = ", c.n_embd, ", vocab_size]"));
  }
  const std::string vocab_key = hp.Key("vocab_size");
  const std::string tokens_key = "tokenizer.ggml.tokens";
  c.vocab_size = embd->shape[1];
  if (file.Has(vocab_key)) {
    ASSIGN_OR_RETURN(c.vocab_size, hp.PositiveInt("vocab_size"));
  } else if (file.Has(tokens_key)) {
    ASSIGN_OR_RETURN(uint64_t n, file.GetArrayLength(tokens_key));
    c.vocab_size = static_cast<int64_t>(n);
  }
  if (file.Has(tokens_key)) {
    ASSIGN_OR_RETURN(uint64_t n, file.GetArrayLength(tokens_key));
    if (static_cast<int64_t>(n) != c.vocab_size) {
      return hp.Invalid(
          tokens_key, absl::StrCat("has ", n, " tokens but the vocabulary size is ", c.vocab_size));
    }
  }
  if (embd->shape[1] != c.vocab_size) {
    return InvalidTensor(
        file, embd->name,
        absl::StrCat("has shape ", ShapeString(*embd), " but the vocabulary ", "size (", vocab_key,
                     " or ", tokens_key, ") is ", c.vocab_size));
  }

  const GgufTensorInfo* output = file.FindTensor("output.weight");
  c.tied_embeddings = output == nullptr;
  if (output != nullptr && (output->shape.size() != 2 || output->shape[0] != c.n_embd ||
                            output->shape[1] != c.vocab_size)) {
    return InvalidTensor(file, output->name,
                         absl::StrCat("has shape ", ShapeString(*output), "; expected [", c.n_embd,
                                      ", ", c.vocab_size, "]"));
  }

  const GgufTensorInfo* rope_freqs = file.FindTensor("rope_freqs.weight");
  c.has_rope_freqs = rope_freqs != nullptr;
  if (rope_freqs != nullptr &&
      (rope_freqs->type != GgmlType::kF32 || rope_freqs->num_elements() != c.rope_dim / 2)) {
    return InvalidTensor(
        file, rope_freqs->name,
        absl::StrCat("is ", GgmlTypeName(rope_freqs->type), " ", ShapeString(*rope_freqs),
                     "; expected F32 [", c.rope_dim / 2, "] (rope_dim / 2)"));
  }
  RETURN_IF_ERROR(ReadArchitectureFeatures(file, &c));
  return c;
}

}  // namespace tessera
