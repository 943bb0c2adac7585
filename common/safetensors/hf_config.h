// Model metadata from a Hugging Face checkpoint directory's config.json.
//
// Lives beside the safetensors reader (not in tessera_common) so that the
// GGUF-only core keeps depending on abseil alone; this needs nlohmann-json.
// Both functions are thread-safe (they only read the file).
#ifndef TESSERA_COMMON_SAFETENSORS_HF_CONFIG_H_
#define TESSERA_COMMON_SAFETENSORS_HF_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace tessera {

// Reads a Hugging Face config.json. architectures[0] must be LlamaForCausalLM
// or MistralForCausalLM (architecture "llama"), Qwen2ForCausalLM ("qwen2") or
// Glm4ForCausalLM ("glm4"), else UNIMPLEMENTED naming it and the supported
// list. Per family: qwen2 has Q/K/V biases and rotate-half RoPE
// (use_sliding_window true is UNIMPLEMENTED); glm4 reads attention_bias
// (default true) and partial_rotary_factor (default 0.5; rope_dim = head_dim
// times it); llama refuses attention_bias or mlp_bias true (UNIMPLEMENTED);
// Mistral's sliding_window, when set, caps context_length (attention inside
// the window is ordinary causal attention). Required keys:
// hidden_size, intermediate_size, num_attention_heads, num_hidden_layers,
// rms_norm_eps, vocab_size, max_position_embeddings; optional (null = absent):
// num_key_value_heads (= heads), rope_theta (10000), tie_word_embeddings
// (false), head_dim (hidden / heads; another value is UNIMPLEMENTED),
// rope_scaling ({"rope_type" or "type": "default" | "linear" (factor) |
// "llama3" (factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings)}; other types are UNIMPLEMENTED). A file
// that cannot be read is NOT_FOUND; bad JSON, a missing, ill-typed, out of
// range or contradictory key is INVALID_ARGUMENT naming the file and the key.
// llama3 scaling sets has_rope_freqs and rope_freq_factors.
absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const std::string& config_json_path);

// The per-frequency divisors of Llama 3.1 RoPE scaling, as Hugging Face's
// _compute_llama3_parameters applies them: for pair i of rot_dim / 2, with
// wavelength w = 2*pi * theta^(2i/rot_dim), 1 when w < original_max /
// high_freq_factor, `factor` when w > original_max / low_freq_factor, else
// 1 / ((1 - s) / factor + s) with s = (original_max / w - low_freq_factor) /
// (high_freq_factor - low_freq_factor). Computed in double, returned as float.
// Arguments are assumed valid (ModelConfigFromHfConfig checks them).
std::vector<float> Llama3RopeFreqFactors(int rot_dim, double rope_theta, double factor,
                                         double low_freq_factor, double high_freq_factor,
                                         double original_max_position_embeddings);

}  // namespace tessera

#endif  // TESSERA_COMMON_SAFETENSORS_HF_CONFIG_H_
