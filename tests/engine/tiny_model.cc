#include "tests/engine/tiny_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "base/status_macros.h"
#include "common/tokenizer/byte_level.h"
#include "engine/model_weights.h"
#include "kernels/dtype.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::testing {
namespace {

// Formats with an encoder get `v` (rows of `cols`) quantised; the other
// block formats get random valid blocks instead (RandomizeQuantBlocks: the
// values are not v's, which is all an invariance test needs).
std::string Encode(GgmlType type, const std::vector<float>& v, int64_t cols, uint64_t seed) {
  switch (type) {
    case GgmlType::kF32: return EncodeF32(v);
    case GgmlType::kF16: return EncodeF16(v);
    case GgmlType::kBF16: return EncodeBF16(v);
    case GgmlType::kQ8_0: return EncodeQ8_0(v);
    case GgmlType::kQ4_1: return EncodeQ4_1(v);
    default: break;
  }
  const kernels::DType dtype = KernelDType(type).value();
  const int64_t rows = static_cast<int64_t>(v.size()) / cols;
  const size_t row_bytes = kernels::RowBytes(dtype, cols);
  std::string out(row_bytes * rows, '\0');
  std::mt19937 rng(static_cast<uint32_t>(seed));
  kernels::testing::RandomizeQuantBlocks(dtype, reinterpret_cast<uint8_t*>(out.data()), rows, cols,
                                         row_bytes, rng);
  return out;
}

}  // namespace

absl::Status WriteTinyModel(const TinyModelSpec& s, const std::string& path) {
  std::mt19937_64 rng(s.seed);
  auto random = [&](int64_t n, float stddev, float mean = 0.0f) {
    std::normal_distribution<float> dist(mean, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  };
  const int head_dim = s.n_embd / s.n_head;
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "tessera-tiny-test");
  w.SetUint32("llama.block_count", s.n_layer);
  w.SetUint32("llama.context_length", s.context);
  w.SetUint32("llama.embedding_length", s.n_embd);
  w.SetUint32("llama.feed_forward_length", s.n_ff);
  w.SetUint32("llama.attention.head_count", s.n_head);
  w.SetUint32("llama.attention.head_count_kv", s.n_kv_head);
  w.SetFloat32("llama.rope.freq_base", 10000.0f);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetUint32("llama.rope.dimension_count", head_dim);
  w.SetUint32("llama.vocab_size", s.vocab);
  if (s.with_tokenizer) {
    if (s.vocab < 257) {
      return absl::InvalidArgumentError("with_tokenizer needs a vocabulary of at least 257");
    }
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (int b = 0; b < 256; ++b) {
      std::string t;
      AppendByteEncoded(std::string_view(reinterpret_cast<const char*>(&b), 1), &t);
      tokens.push_back(t);
      types.push_back(1);  // normal
    }
    tokens.push_back("<|endoftext|>");
    types.push_back(3);  // control
    while (static_cast<int>(tokens.size()) < s.vocab) {
      tokens.push_back("<filler" + std::to_string(tokens.size()) + ">");
      types.push_back(4);  // user-defined
    }
    w.SetString("tokenizer.ggml.model", "gpt2");
    w.SetStringArray("tokenizer.ggml.tokens", tokens);
    w.SetInt32Array("tokenizer.ggml.token_type", types);
    w.SetStringArray("tokenizer.ggml.merges", {});
    w.SetUint32("tokenizer.ggml.bos_token_id", 256);
    w.SetUint32("tokenizer.ggml.eos_token_id", 256);
  }

  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, GgmlType type) {
    return w.AddTensor(name, {cols, rows}, type,
                       Encode(type, random(rows * cols, 0.5f / std::sqrt(float(cols))), cols, rng()));
  };
  auto vec = [&](const std::string& name, int64_t n) {
    return w.AddTensor(name, {n}, GgmlType::kF32, EncodeF32(random(n, 0.1f, 1.0f)));
  };
  // Embeddings get a larger scale so logits are spread out.
  std::vector<float> embedding = random(int64_t(s.vocab) * s.n_embd, 1.0f);
  if (s.poison_token >= 0 && s.poison_token < s.vocab) {
    std::fill_n(embedding.begin() + int64_t(s.poison_token) * s.n_embd, s.n_embd,
                std::numeric_limits<float>::quiet_NaN());
  }
  RETURN_IF_ERROR(w.AddTensor("token_embd.weight", {s.n_embd, s.vocab}, s.embedding_type,
                              Encode(s.embedding_type, embedding, s.n_embd, rng())));
  RETURN_IF_ERROR(vec("output_norm.weight", s.n_embd));
  if (!s.tied_embeddings) {
    RETURN_IF_ERROR(matrix("output.weight", s.vocab, s.n_embd, s.matrix_type));
  }
  if (s.rope_freqs) {
    std::vector<float> factors(head_dim / 2);
    for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 0.5f * i;
    RETURN_IF_ERROR(w.AddTensor("rope_freqs.weight", {head_dim / 2}, GgmlType::kF32,
                                EncodeF32(factors)));
  }
  const int q_dim = s.n_head * head_dim, kv_dim = s.n_kv_head * head_dim;
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    RETURN_IF_ERROR(vec(p + "attn_norm.weight", s.n_embd));
    RETURN_IF_ERROR(vec(p + "ffn_norm.weight", s.n_embd));
    RETURN_IF_ERROR(matrix(p + "attn_q.weight", q_dim, s.n_embd, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "attn_k.weight", kv_dim, s.n_embd, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "attn_v.weight", kv_dim, s.n_embd, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "attn_output.weight", s.n_embd, q_dim, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", s.n_ff, s.n_embd, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "ffn_up.weight", s.n_ff, s.n_embd, s.matrix_type));
    RETURN_IF_ERROR(matrix(p + "ffn_down.weight", s.n_embd, s.n_ff, s.matrix_type));
  }
  return w.WriteFile(path);
}

}  // namespace tessera::testing
