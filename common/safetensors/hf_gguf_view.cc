#include "common/safetensors/hf_gguf_view.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/gguf/gguf_writer.h"
#include "common/model_config.h"
#include "common/safetensors/hf_config.h"
#include "common/safetensors/safetensors_model.h"
#include "base/status_macros.h"

namespace tessera {
namespace {

// What the returned GgufFile must keep alive: the shard mappings and any
// tensor bytes made here.
struct ViewStorage {
  std::unique_ptr<SafetensorsModel> model;
  std::vector<float> rope_freqs;
};

GgmlType GgmlTypeOf(SafetensorsDtype d) {
  switch (d) {
    case SafetensorsDtype::kF32: return GgmlType::kF32;
    case SafetensorsDtype::kF16: return GgmlType::kF16;
    case SafetensorsDtype::kBF16: return GgmlType::kBF16;
  }
  return GgmlType::kF32;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// One GGUF tensor and where it comes from.
struct Mapping {
  std::string gguf;
  std::string hf;
  std::vector<int64_t> hf_shape;  // what config.json implies, outermost first
  std::string implied_by;         // the config.json keys behind that shape
  bool permute_heads = false;     // Llama Q/K: rotate-half -> adjacent pairs
  int heads = 0;                  // for the permutation
};

// The tensors of `c`'s graph outside the layers, in Hugging Face naming.
std::vector<Mapping> GlobalMappings(const ModelConfig& c) {
  const int64_t d = c.n_embd, vocab = c.vocab_size;
  std::vector<Mapping> m = {
      {"token_embd.weight", "model.embed_tokens.weight", {vocab, d}, "vocab_size, hidden_size"},
      {"output_norm.weight", "model.norm.weight", {d}, "hidden_size"},
  };
  if (!c.tied_embeddings) {
    m.push_back({"output.weight", "lm_head.weight", {vocab, d}, "vocab_size, hidden_size"});
  }
  return m;
}

// The tensors of layer `l`. Built one layer at a time, so a config.json that
// claims absurdly many layers fails at the first missing one instead of
// listing them all first.
std::vector<Mapping> LayerMappings(const ModelConfig& c, int l) {
  const int64_t d = c.n_embd, ff = c.n_ff;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_kv_head} * c.head_dim;
  const bool llama = c.architecture == "llama";
  const bool glm4 = c.architecture == "glm4";
  std::vector<Mapping> m;
  {
    const std::string g = absl::StrCat("blk.", l, ".");
    const std::string h = absl::StrCat("model.layers.", l, ".");
    m.push_back({g + "attn_norm.weight", h + "input_layernorm.weight", {d}, "hidden_size"});
    m.push_back({g + "ffn_norm.weight", h + "post_attention_layernorm.weight", {d},
                 "hidden_size"});
    m.push_back({g + "attn_q.weight", h + "self_attn.q_proj.weight", {q_dim, d},
                 "num_attention_heads, head_dim, hidden_size", llama, c.n_head});
    m.push_back({g + "attn_k.weight", h + "self_attn.k_proj.weight", {kv_dim, d},
                 "num_key_value_heads, head_dim, hidden_size", llama, c.n_kv_head});
    m.push_back({g + "attn_v.weight", h + "self_attn.v_proj.weight", {kv_dim, d},
                 "num_key_value_heads, head_dim, hidden_size"});
    m.push_back({g + "attn_output.weight", h + "self_attn.o_proj.weight", {d, q_dim},
                 "hidden_size, num_attention_heads, head_dim"});
    if (c.qkv_bias) {
      m.push_back({g + "attn_q.bias", h + "self_attn.q_proj.bias", {q_dim},
                   "num_attention_heads, head_dim"});
      m.push_back({g + "attn_k.bias", h + "self_attn.k_proj.bias", {kv_dim},
                   "num_key_value_heads, head_dim"});
      m.push_back({g + "attn_v.bias", h + "self_attn.v_proj.bias", {kv_dim},
                   "num_key_value_heads, head_dim"});
    }
    if (glm4) {
      m.push_back({g + "ffn_up.weight", h + "mlp.gate_up_proj.weight", {2 * ff, d},
                   "intermediate_size, hidden_size"});
      m.push_back({g + "post_attention_norm.weight", h + "post_self_attn_layernorm.weight", {d},
                   "hidden_size"});
      m.push_back({g + "post_ffw_norm.weight", h + "post_mlp_layernorm.weight", {d},
                   "hidden_size"});
    } else {
      m.push_back({g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {ff, d},
                   "intermediate_size, hidden_size"});
      m.push_back({g + "ffn_up.weight", h + "mlp.up_proj.weight", {ff, d},
                   "intermediate_size, hidden_size"});
    }
    m.push_back({g + "ffn_down.weight", h + "mlp.down_proj.weight", {d, ff},
                 "hidden_size, intermediate_size"});
  }
  return m;
}

// Checks each mapped tensor against the checkpoint and appends its view.
absl::Status MapTensors(const std::string& dir, const SafetensorsModel& model,
                        const std::vector<Mapping>& mappings,
                        std::vector<GgufFile::ExternalTensor>* tensors,
                        absl::flat_hash_set<std::string>* used) {
  for (const Mapping& m : mappings) {
    const SafetensorsModel::TensorRef* ref = model.FindTensor(m.hf);
    if (ref == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(dir, ": tensor '", m.hf, "' not found (needed as ", m.gguf, ")"));
    }
    used->insert(m.hf);
    const SafetensorsTensorInfo& info = *ref->info;
    if (info.shape != m.hf_shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, ": tensor '", m.hf, "' has shape ", ShapeText(info.shape), "; config.json (",
          m.implied_by, ") implies ", ShapeText(m.hf_shape)));
    }
    GgufFile::ExternalTensor t;
    t.info.name = m.gguf;
    t.info.type = GgmlTypeOf(info.dtype);
    t.info.shape.assign(info.shape.rbegin(), info.shape.rend());
    const uint8_t* src = ref->data();
    if (!m.permute_heads) {
      t.data = src;
    } else {
      // GGUF row h*hd + 2i + s holds Hugging Face row h*hd + s*hd/2 + i.
      const int64_t rows = info.shape[0];
      const size_t row_bytes = info.size_bytes() / static_cast<size_t>(rows);
      const int64_t hd = rows / m.heads;
      t.produce = [src, rows, row_bytes, hd](uint8_t* out) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t head = r / hd, within = r % hd;
          const int64_t i = within / 2, s = within % 2;
          const int64_t from = head * hd + s * (hd / 2) + i;
          std::memcpy(out + r * row_bytes, src + from * row_bytes, row_bytes);
        }
      };
    }
    tensors->push_back(std::move(t));
  }
  return absl::OkStatus();
}

// Hugging Face tensors that carry no weights of the graph.
bool Ignorable(const std::string& hf_name, const ModelConfig& c) {
  if (absl::EndsWith(hf_name, ".rotary_emb.inv_freq")) return true;
  return c.tied_embeddings && hf_name == "lm_head.weight";
}

// The metadata convert_hf_to_gguf.py would write for `c`, plus the tensor
// table (so the header hash covers it).
std::string Metadata(const std::string& name, const ModelConfig& c,
                     const std::vector<GgufFile::ExternalTensor>& tensors) {
  GgufWriter w;
  const std::string a = c.architecture;
  w.SetString("general.architecture", a);
  w.SetString("general.name", name);
  w.SetUint32(a + ".context_length", static_cast<uint32_t>(c.context_length));
  w.SetUint32(a + ".embedding_length", c.n_embd);
  w.SetUint32(a + ".block_count", c.n_layer);
  w.SetUint32(a + ".feed_forward_length", c.n_ff);
  w.SetUint32(a + ".attention.head_count", c.n_head);
  w.SetUint32(a + ".attention.head_count_kv", c.n_kv_head);
  w.SetFloat32(a + ".attention.layer_norm_rms_epsilon", c.rms_eps);
  w.SetFloat32(a + ".rope.freq_base", c.rope_freq_base);
  w.SetUint32(a + ".rope.dimension_count", c.rope_dim);
  w.SetUint32(a + ".vocab_size", static_cast<uint32_t>(c.vocab_size));
  if (c.rope_freq_scale != 1.0f) {
    w.SetString(a + ".rope.scaling.type", "linear");
    w.SetFloat32(a + ".rope.scaling.factor", 1.0f / c.rope_freq_scale);
  }
  w.SetString("tessera.source.format", "huggingface");
  std::vector<std::string> table;
  for (const GgufFile::ExternalTensor& t : tensors) {
    table.push_back(absl::StrCat(t.info.name, " ", GgmlTypeName(t.info.type), " ",
                                 ShapeText(t.info.shape)));
  }
  w.SetStringArray("tessera.source.tensors", table);
  return w.Serialize();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GgufFile>> OpenHfDirectoryAsGguf(const std::string& dir) {
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfigFromHfConfig(dir + "/config.json"));
  auto storage = std::make_shared<ViewStorage>();
  ASSIGN_OR_RETURN(storage->model, SafetensorsModel::Open(dir));
  const SafetensorsModel& model = *storage->model;

  std::vector<GgufFile::ExternalTensor> tensors;
  absl::flat_hash_set<std::string> used;
  std::vector<Mapping> mappings = GlobalMappings(config);
  for (int l = 0; l <= config.n_layer; ++l) {
    if (l > 0) mappings = LayerMappings(config, l - 1);
    RETURN_IF_ERROR(MapTensors(dir, model, mappings, &tensors, &used));
  }
  for (const std::string& name : model.TensorNames()) {
    if (used.contains(name) || Ignorable(name, config)) continue;
    return absl::UnimplementedError(
        absl::StrCat(dir, ": tensor '", name, "' is not part of the ", config.architecture,
                     " graph this engine runs; refusing rather than ignoring it"));
  }
  if (config.has_rope_freqs) {
    storage->rope_freqs = config.rope_freq_factors;
    GgufFile::ExternalTensor t;
    t.info.name = "rope_freqs.weight";
    t.info.type = GgmlType::kF32;
    t.info.shape = {static_cast<int64_t>(storage->rope_freqs.size())};
    t.data = reinterpret_cast<const uint8_t*>(storage->rope_freqs.data());
    tensors.push_back(std::move(t));
  }

  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> metadata,
                   GgufFile::FromBuffer(dir, Metadata(name, config, tensors)));
  return GgufFile::WithExternalTensors(std::move(metadata), std::move(tensors),
                                       std::move(storage));
}

}  // namespace tessera
