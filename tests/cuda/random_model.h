// Random-weight Llama-architecture models of real shapes (SmolLM2-135M,
// Llama-3-8B), written as GGUF with our own writer so that a bare GPU machine
// can make them instead of receiving gigabytes.
//
// Values come from a counter-based hash of (seed, tensor, element), so a
// model is a pure function of its shape, type and seed, and large tensors are
// filled by several threads. Matrices are uniform with standard deviation
// 0.5 / sqrt(fan_in); the embedding has standard deviation 1 (so tied logits
// are well spread); norms are 1 + N(0, 0.1)-like. No tokenizer is written
// (llama.vocab_size carries the vocabulary size).
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
};

// SmolLM2-135M: 30 layers, 576 wide, 1536 FFN, 9 heads over 3 KV heads,
// vocabulary 49152, tied embeddings.
RandomModelShape SmolLM2_135MShape();
// Llama-3-8B: 32 layers, 4096 wide, 14336 FFN, 32 heads over 8 KV heads,
// vocabulary 128256, separate LM head.
RandomModelShape Llama3_8BShape();
// "smollm2-135m" or "llama3-8b"; NOT_FOUND otherwise.
absl::StatusOr<RandomModelShape> RandomModelShapeByName(const std::string& name);

// Writes the model to `path`. `type` (F32, F16 or BF16; Q8_0 for small
// models that test refusals) is used for every matrix and the embedding;
// norms are F32. INVALID_ARGUMENT for another type
// or an inconsistent shape.
absl::Status WriteRandomModel(const RandomModelShape& shape, GgmlType type, uint64_t seed,
                              const std::string& path);

// Bytes of the matrices (and embedding) WriteRandomModel writes.
uint64_t RandomModelWeightBytes(const RandomModelShape& shape, GgmlType type);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_CUDA_RANDOM_MODEL_H_
