#include "tests/cuda/random_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_writer.h"
#include "common/gguf/tensor_encoding.h"
#include "base/status_macros.h"

namespace tessera::testing {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1) from (stream, index).
float Uniform(uint64_t stream, uint64_t index) {
  const uint64_t bits = Mix(stream ^ Mix(index));
  return static_cast<float>(static_cast<double>(bits >> 11) * 0x1.0p-52 - 1.0);
}

size_t ElementBytes(GgmlType type) { return type == GgmlType::kF32 ? 4 : 2; }

// `n` values mean + stddev * (uniform scaled to unit variance), encoded in
// `type`, filled by every hardware thread (one per MiB of values at most).
std::string RandomTensor(GgmlType type, int64_t n, float stddev, float mean, uint64_t stream) {
  if (type == GgmlType::kQ8_0) {
    // Only small refusal-test models use Q8_0: quantise float values.
    const std::string f = RandomTensor(GgmlType::kF32, n, stddev, mean, stream);
    std::vector<float> v(n);
    std::memcpy(v.data(), f.data(), f.size());
    return EncodeQ8_0(v);
  }
  const size_t elem = ElementBytes(type);
  std::string bytes(static_cast<size_t>(n) * elem, '\0');
  const float scale = stddev * std::sqrt(3.0f);
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = static_cast<int>(std::clamp<int64_t>(n / (1 << 20), 1, cores));
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      const int64_t begin = n * w / threads, end = n * (w + 1) / threads;
      char* out = bytes.data();
      for (int64_t i = begin; i < end; ++i) {
        const float v = mean + scale * Uniform(stream, static_cast<uint64_t>(i));
        if (type == GgmlType::kF32) {
          std::memcpy(out + i * 4, &v, 4);
        } else {
          const uint16_t h = type == GgmlType::kF16 ? F32ToF16(v) : F32ToBF16(v);
          std::memcpy(out + i * 2, &h, 2);
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  return bytes;
}

}  // namespace

RandomModelShape SmolLM2_135MShape() {
  RandomModelShape s;
  s.name = "smollm2-135m";
  s.n_layer = 30;
  s.n_embd = 576;
  s.n_ff = 1536;
  s.n_head = 9;
  s.n_kv_head = 3;
  s.vocab = 49152;
  s.context = 8192;
  s.rope_freq_base = 100000.0f;
  s.tied_embeddings = true;
  return s;
}

RandomModelShape Llama3_8BShape() {
  RandomModelShape s;
  s.name = "llama3-8b";
  s.n_layer = 32;
  s.n_embd = 4096;
  s.n_ff = 14336;
  s.n_head = 32;
  s.n_kv_head = 8;
  s.vocab = 128256;
  s.context = 8192;
  s.rope_freq_base = 500000.0f;
  s.tied_embeddings = false;
  return s;
}

RandomModelShape Qwen2_0_5BShape() {
  RandomModelShape s;
  s.name = "qwen2-0.5b";
  s.architecture = "qwen2";
  s.n_layer = 24;
  s.n_embd = 896;
  s.n_ff = 4864;
  s.n_head = 14;
  s.n_kv_head = 2;
  s.vocab = 151936;
  s.context = 32768;
  s.rope_freq_base = 1000000.0f;
  s.rms_eps = 1e-6f;
  s.tied_embeddings = true;
  s.qkv_bias = true;
  return s;
}

RandomModelShape Glm4_9BShape() {
  RandomModelShape s;
  s.name = "glm4-9b";
  s.architecture = "glm4";
  s.n_layer = 40;
  s.n_embd = 4096;
  s.n_ff = 13696;
  s.n_head = 32;
  s.n_kv_head = 2;
  s.vocab = 151552;
  s.context = 32768;
  s.rope_freq_base = 10000.0f;
  s.rms_eps = 1e-5f;
  s.tied_embeddings = false;
  s.rope_dim = 64;  // partial_rotary_factor 0.5 of head_dim 128
  s.qkv_bias = true;
  return s;
}

absl::StatusOr<RandomModelShape> RandomModelShapeByName(const std::string& name) {
  if (name == "smollm2-135m") return SmolLM2_135MShape();
  if (name == "llama3-8b") return Llama3_8BShape();
  if (name == "qwen2-0.5b") return Qwen2_0_5BShape();
  if (name == "glm4-9b") return Glm4_9BShape();
  return absl::NotFoundError(absl::StrCat(
      "unknown model shape '", name, "' (smollm2-135m, llama3-8b, qwen2-0.5b or glm4-9b)"));
}

uint64_t RandomModelWeightBytes(const RandomModelShape& s, GgmlType type) {
  const uint64_t e = ElementBytes(type);
  const uint64_t head_dim = s.n_embd / s.n_head;
  const uint64_t q = s.n_head * head_dim, kv = s.n_kv_head * head_dim;
  const uint64_t layer = s.n_embd * (q + 2 * kv) + q * s.n_embd + 3ull * s.n_embd * s.n_ff;
  const uint64_t embd = static_cast<uint64_t>(s.vocab) * s.n_embd;
  return e * (s.n_layer * layer + embd * (s.tied_embeddings ? 1 : 2));
}

absl::Status WriteRandomModel(const RandomModelShape& s, GgmlType type, uint64_t seed,
                              const std::string& path) {
  if (type != GgmlType::kF32 && type != GgmlType::kF16 && type != GgmlType::kBF16 &&
      type != GgmlType::kQ8_0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": random models are F32, F16, BF16 or Q8_0, not ", GgmlTypeName(type)));
  }
  if (s.n_head <= 0 || s.n_kv_head <= 0 || s.n_embd % s.n_head != 0 ||
      s.n_head % s.n_kv_head != 0 || s.n_layer <= 0 || s.vocab <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shape '", s.name, "'"));
  }
  const std::string& arch = s.architecture;
  const bool glm4 = arch == "glm4";
  if (arch != "llama" && arch != "qwen2" && !glm4) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": architecture '", arch, "' (llama, qwen2 or glm4)"));
  }
  const int head_dim = s.n_embd / s.n_head;
  const int rope_dim = s.rope_dim == 0 ? head_dim : s.rope_dim;
  if ((arch == "qwen2" && !s.qkv_bias) || (s.fused_qkv && !glm4) || rope_dim % 2 != 0 ||
      rope_dim < 0 || rope_dim > head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": shape '", s.name, "' (", arch, ", rope_dim ", rope_dim,
        s.qkv_bias ? ", Q/K/V biases" : ", no Q/K/V biases", s.fused_qkv ? ", fused Q/K/V" : "",
        ") is not a model the engine reads"));
  }
  const std::string k = arch + ".";
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.name", absl::StrCat("tessera-random-", s.name));
  w.SetUint32(k + "block_count", s.n_layer);
  w.SetUint32(k + "context_length", s.context);
  w.SetUint32(k + "embedding_length", s.n_embd);
  w.SetUint32(k + "feed_forward_length", s.n_ff);
  w.SetUint32(k + "attention.head_count", s.n_head);
  w.SetUint32(k + "attention.head_count_kv", s.n_kv_head);
  w.SetFloat32(k + "rope.freq_base", s.rope_freq_base);
  w.SetFloat32(k + "attention.layer_norm_rms_epsilon", s.rms_eps);
  w.SetUint32(k + "rope.dimension_count", rope_dim);
  w.SetUint32(k + "vocab_size", s.vocab);

  // Tensors are made as WriteFile reaches them, so the file is streamed to
  // disk one tensor at a time (the 8B model is 16 GB).
  uint64_t stream = Mix(seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, GgmlType t, float stddev,
                 float mean) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const uint64_t id = ++stream;
    return w.AddTensor(name, std::move(shape), t,
                       [=] { return RandomTensor(t, n, stddev, mean, id); });
  };
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    return add(name, {cols, rows}, type, 0.5f / std::sqrt(float(cols)), 0.0f);
  };
  auto norm = [&](const std::string& name, int64_t n) {
    return add(name, {n}, GgmlType::kF32, 0.1f, 1.0f);
  };
  auto bias = [&](const std::string& name, int64_t n) {
    return add(name, {n}, GgmlType::kF32, 0.5f, 0.0f);
  };
  RETURN_IF_ERROR(add("token_embd.weight", {s.n_embd, s.vocab}, type, 1.0f, 0.0f));
  RETURN_IF_ERROR(norm("output_norm.weight", s.n_embd));
  if (!s.tied_embeddings) {
    RETURN_IF_ERROR(matrix("output.weight", s.vocab, s.n_embd));
  }
  const int q_dim = s.n_head * head_dim, kv_dim = s.n_kv_head * head_dim;
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    RETURN_IF_ERROR(norm(p + "attn_norm.weight", s.n_embd));
    RETURN_IF_ERROR(norm(p + "ffn_norm.weight", s.n_embd));
    if (s.fused_qkv) {
      RETURN_IF_ERROR(matrix(p + "attn_qkv.weight", q_dim + 2 * kv_dim, s.n_embd));
      if (s.qkv_bias) RETURN_IF_ERROR(bias(p + "attn_qkv.bias", q_dim + 2 * kv_dim));
    } else {
      RETURN_IF_ERROR(matrix(p + "attn_q.weight", q_dim, s.n_embd));
      RETURN_IF_ERROR(matrix(p + "attn_k.weight", kv_dim, s.n_embd));
      RETURN_IF_ERROR(matrix(p + "attn_v.weight", kv_dim, s.n_embd));
      if (s.qkv_bias) {
        RETURN_IF_ERROR(bias(p + "attn_q.bias", q_dim));
        RETURN_IF_ERROR(bias(p + "attn_k.bias", kv_dim));
        RETURN_IF_ERROR(bias(p + "attn_v.bias", kv_dim));
      }
    }
    RETURN_IF_ERROR(matrix(p + "attn_output.weight", s.n_embd, q_dim));
    if (glm4) {
      // [gate; up] in one tensor, as llama.cpp stores GLM-4's gate_up_proj.
      RETURN_IF_ERROR(matrix(p + "ffn_up.weight", 2 * int64_t{s.n_ff}, s.n_embd));
      RETURN_IF_ERROR(norm(p + "post_attention_norm.weight", s.n_embd));
      RETURN_IF_ERROR(norm(p + "post_ffw_norm.weight", s.n_embd));
    } else {
      RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", s.n_ff, s.n_embd));
      RETURN_IF_ERROR(matrix(p + "ffn_up.weight", s.n_ff, s.n_embd));
    }
    RETURN_IF_ERROR(matrix(p + "ffn_down.weight", s.n_embd, s.n_ff));
  }
  return w.WriteFile(path);
}

}  // namespace tessera::testing
