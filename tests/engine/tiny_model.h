// Writes tiny random-weight Llama models as GGUF files for engine tests.
#ifndef TESSERA_TESTS_ENGINE_TINY_MODEL_H_
#define TESSERA_TESTS_ENGINE_TINY_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/gguf/gguf_file.h"

namespace tessera::testing {

struct TinyModelSpec {
  int n_layer = 3;
  int n_embd = 64;
  int n_ff = 96;
  int n_head = 4;
  int n_kv_head = 2;
  int vocab = 128;
  int context = 256;
  // Storage type of the layer matrices and of the embedding. Types without
  // an encoder (Q4_0, Q5_0, Q5_1, IQ4_NL, the K-quants, IQ4_XS) get random
  // valid blocks; the K-quants and IQ4_XS need n_embd and n_ff multiples of
  // 256.
  GgmlType matrix_type = GgmlType::kQ4_1;
  GgmlType embedding_type = GgmlType::kQ8_0;
  bool tied_embeddings = true;
  // Writes rope_freqs.weight (Llama-3 style per-pair frequency divisors 1, 1.5, 2, ...).
  bool rope_freqs = false;
  // Writes a byte-level BPE vocabulary (no merges): the 256 byte tokens,
  // then "<|endoftext|>" (BOS and EOS), then filler tokens up to `vocab`,
  // which must be at least 257. Enough for a coordinator to serve the model.
  bool with_tokenizer = false;
  // >= 0: this token's embedding row is NaN, so every sequence holding it
  // computes non-finite values (with tied embeddings, so is its logit
  // everywhere). For tests of the stages' NaN/Inf guards.
  int32_t poison_token = -1;
  uint64_t seed = 1;
};

// Writes the model to `path` (weights ~ N(0, 0.5/sqrt(fan_in)), norms ~ 1).
absl::Status WriteTinyModel(const TinyModelSpec& spec, const std::string& path);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_TINY_MODEL_H_
