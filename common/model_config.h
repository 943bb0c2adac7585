// The hyper-parameters of a model, read from and checked against its GGUF file.
//
// This is the one place that knows GGUF's "{arch}.*" key names; the engine,
// the planner and the coordinator all take a ModelConfig instead of reading
// metadata themselves. Supported architectures: llama (which also covers
// SmolLM2, Llama 2/3 and Mistral), qwen2 and glm4; their differences from the
// Llama graph are the feature flags at the end of ModelConfig.
//
// common/safetensors/hf_config.h builds the same struct from a Hugging Face
// config.json (for safetensors checkpoints).
//
// ModelConfig is a plain value; ModelConfigFromGguf is thread-safe (it only
// reads the file).
#ifndef TESSERA_COMMON_MODEL_CONFIG_H_
#define TESSERA_COMMON_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"

namespace tessera {

// Layers [begin, end) of a model: what a pipeline stage runs.
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
};

struct ModelConfig {
  std::string architecture;  // general.architecture: llama, qwen2 or glm4
  std::string name;          // general.name, or "" if absent
  int n_layer = 0;           // transformer blocks
  int n_embd = 0;            // hidden size
  int n_ff = 0;              // feed-forward (SwiGLU) inner size
  int n_head = 0;            // query heads
  int n_kv_head = 0;         // key/value heads (grouped-query attention)
  int head_dim = 0;          // n_embd / n_head
  int rope_dim = 0;          // leading dimensions of each head that RoPE rotates
  int64_t vocab_size = 0;
  int64_t context_length = 0;  // the training context, in tokens
  float rope_freq_base = 10000.0f;
  // Multiplies positions before RoPE: 1 / factor for linear scaling, else 1.
  float rope_freq_scale = 1.0f;
  float rms_eps = 0.0f;
  // True when there is no output.weight and the LM head reuses token_embd.
  bool tied_embeddings = false;
  // True when a rope_freqs.weight tensor (per-frequency scaling factors,
  // rope_dim / 2 F32 values, used by Llama 3.1+) must be applied.
  bool has_rope_freqs = false;
  // The rope_dim / 2 per-frequency divisors when they come from the config
  // (Hugging Face llama3 rope_scaling) rather than from a rope_freqs.weight
  // tensor; empty otherwise. Frequency i is base^(-2i/rope_dim) / factors[i].
  std::vector<float> rope_freq_factors;

  // How the architecture departs from the Llama graph.
  // RoPE rotates dims (i, i + rope_dim/2) rather than (2i, 2i+1): qwen2.
  bool rope_neox = false;
  // Q, K and V have bias vectors (attn_q.bias, ...): qwen2, and glm4 files
  // that carry them.
  bool qkv_bias = false;
  // Q, K and V are one attn_qkv matrix of [q; k; v] rows (some glm4 files).
  bool fused_qkv = false;
  // RMSNorm of the attention and FFN outputs before each residual add
  // (post_attention_norm, post_ffw_norm): glm4.
  bool post_norms = false;
  // ffn_up holds [gate; up] as 2 * n_ff rows and there is no ffn_gate: glm4.
  bool fused_gate_up = false;
};

// The architectures ModelConfigFromGguf accepts, for error messages.
inline constexpr char kSupportedArchitectures[] = "llama, qwen2, glm4";

// Reads and validates the configuration. UNIMPLEMENTED for an architecture
// other than llama or a RoPE scaling type other than none/linear; NOT_FOUND
// for a missing required key; INVALID_ARGUMENT (naming the file and the key or
// tensor) for values that are out of range or inconsistent with each other or
// with the token embedding's shape.
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file);



}  // namespace tessera

#endif  // TESSERA_COMMON_MODEL_CONFIG_H_
