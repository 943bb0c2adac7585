// Random-weight models of real shapes (SmolLM2-135M, Llama-3-8B, Qwen2-0.5B,
// GLM-4-9B), written as GGUF with our own writer so that a bare GPU machine
// can make them instead of receiving gigabytes. The tensor names and layouts
// are those of llama.cpp's converter (as scripts/golden/gen_arch_golden.py
// writes them and engine/model_weights.cc reads them): qwen2 adds
// attn_{q,k,v}.bias; glm4 adds post_attention_norm / post_ffw_norm, stores
// [gate; up] as one ffn_up of 2 * n_ff rows, may fuse [q; k; v] into
// attn_qkv (with attn_qkv.bias), and rotates only rope_dim dims of a head.
//
// Values come from a counter-based hash of (seed, tensor, element), so a
// model is a pure function of its shape, type and seed, and large tensors are
// filled by several threads. Matrices are uniform with standard deviation
// 0.5 / sqrt(fan_in); the embedding has standard deviation 1 (so tied logits
// are well spread); norms are 1 + N(0, 0.1)-like; biases have standard
// deviation 0.5. No tokenizer is written (<arch>.vocab_size carries the
// vocabulary size).
//
// Thread-safety: pure functions (they start and join their own threads).
#ifndef TESSERA_TESTS_CUDA_RANDOM_MODEL_H_
#define TESSERA_TESTS_CUDA_RANDOM_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/gguf/ggml_type.h"

namespace tessera::testing {

struct RandomModelShape {
  std::string name;
  // general.architecture: llama, qwen2 (Q/K/V biases required, rotate-half
  // RoPE) or glm4 (post-norms and fused gate/up always).
  std::string architecture = "llama";
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_kv_head = 0;
  int vocab = 0;
  int context = 0;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = true;
  // Rotated dims per head; 0 means all of them (head_dim).
  int rope_dim = 0;
  // Q/K/V bias vectors (required for qwen2, optional for glm4 and llama).
  bool qkv_bias = false;
  // One attn_qkv tensor of [q; k; v] rows instead of three (glm4 only).
  bool fused_qkv = false;
};

// SmolLM2-135M: 30 layers, 576 wide, 1536 FFN, 9 heads over 3 KV heads,
// vocabulary 49152, tied embeddings.
RandomModelShape SmolLM2_135MShape();
// Llama-3-8B: 32 layers, 4096 wide, 14336 FFN, 32 heads over 8 KV heads,
// vocabulary 128256, separate LM head.
RandomModelShape Llama3_8BShape();
// Qwen2-0.5B: 24 layers, 896 wide, 4864 FFN, 14 heads over 2 KV heads,
// vocabulary 151936, tied embeddings, Q/K/V biases, base 1e6, eps 1e-6.
RandomModelShape Qwen2_0_5BShape();
// GLM-4-9B-0414: 40 layers, 4096 wide, 13696 FFN, 32 heads of 128 over 2 KV
// heads, RoPE on 64 of the 128 dims, vocabulary 151552, separate LM head,
// Q/K/V biases (separate tensors), post-norms, fused gate/up.
RandomModelShape Glm4_9BShape();
// "smollm2-135m", "llama3-8b", "qwen2-0.5b" or "glm4-9b"; NOT_FOUND otherwise.
absl::StatusOr<RandomModelShape> RandomModelShapeByName(const std::string& name);

// Writes the model to `path`. `type` (F32, F16 or BF16; Q8_0 for small
// models that test refusals) is used for every matrix and the embedding;
// norms and biases are F32. INVALID_ARGUMENT for another type or an
// inconsistent shape (including a qwen2 model without biases, fused Q/K/V
// outside glm4, or an odd rope_dim larger than head_dim).
absl::Status WriteRandomModel(const RandomModelShape& shape, GgmlType type, uint64_t seed,
                              const std::string& path);

// Bytes of the matrices (and embedding) WriteRandomModel writes.
uint64_t RandomModelWeightBytes(const RandomModelShape& shape, GgmlType type);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_CUDA_RANDOM_MODEL_H_
