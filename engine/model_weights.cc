#include "engine/model_weights.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace tessera {

absl::StatusOr<kernels::DType> KernelDType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return kernels::DType::kF32;
    case GgmlType::kF16: return kernels::DType::kF16;
    case GgmlType::kBF16: return kernels::DType::kBF16;
    case GgmlType::kQ8_0: return kernels::DType::kQ8_0;
    case GgmlType::kQ4_1: return kernels::DType::kQ4_1;
    case GgmlType::kQ4_0: return kernels::DType::kQ4_0;
    case GgmlType::kQ5_0: return kernels::DType::kQ5_0;
    case GgmlType::kQ5_1: return kernels::DType::kQ5_1;
    case GgmlType::kIQ4_NL: return kernels::DType::kIQ4_NL;
    case GgmlType::kIQ4_XS: return kernels::DType::kIQ4_XS;
    case GgmlType::kQ2_K: return kernels::DType::kQ2_K;
    case GgmlType::kQ3_K: return kernels::DType::kQ3_K;
    case GgmlType::kQ4_K: return kernels::DType::kQ4_K;
    case GgmlType::kQ5_K: return kernels::DType::kQ5_K;
    case GgmlType::kQ6_K: return kernels::DType::kQ6_K;
    default:
      return absl::UnimplementedError(
          absl::StrCat("storage type ", GgmlTypeName(type),
                       " is not supported by the kernels (supported: F32, F16, BF16, Q8_0, "
                       "Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, "
                       "IQ4_XS)"));
  }
}

absl::StatusOr<kernels::WeightMatrix> ModelWeights::Matrix(const GgufFile& file,
                                                           const std::string& name,
                                                           int64_t rows, int64_t cols) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": tensor '", name, "' not found"));
  }
  if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows) {
    std::string got;
    for (int64_t d : t->shape) absl::StrAppend(&got, got.empty() ? "" : ",", d);
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: tensor '%s' has shape [%s], expected [%d,%d]", file.path(), name, got, cols, rows));
  }
  auto dtype = KernelDType(t->type);
  if (!dtype.ok()) {
    return absl::UnimplementedError(
        absl::StrCat(file.path(), ": tensor '", name, "': ", dtype.status().message()));
  }
  kernels::WeightMatrix m;
  m.dtype = *dtype;
  m.data = file.TensorData(*t);
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = kernels::RowBytes(*dtype, cols);
  if (m.row_bytes * static_cast<uint64_t>(rows) != t->size_bytes) {
    return absl::DataLossError(absl::StrCat(file.path(), ": tensor '", name,
                                            "' byte size does not match its type and shape"));
  }
  return m;
}

absl::StatusOr<const float*> ModelWeights::Vector(const GgufFile& file, const std::string& name,
                                                  int64_t n) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": tensor '", name, "' not found"));
  }
  if (t->num_elements() != n || t->shape.size() != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: tensor '%s' should be a vector of %d values", file.path(), name, n));
  }
  weight_bytes_ += t->size_bytes;
  const uint8_t* data = file.TensorData(*t);
  if (t->type == GgmlType::kF32) return reinterpret_cast<const float*>(data);
  auto owned = std::make_unique<std::vector<float>>(n);
  const uint16_t* half = reinterpret_cast<const uint16_t*>(data);
  if (t->type == GgmlType::kF16) {
    for (int64_t i = 0; i < n; ++i) (*owned)[i] = kernels::F16ToF32(half[i]);
  } else if (t->type == GgmlType::kBF16) {
    for (int64_t i = 0; i < n; ++i) (*owned)[i] = kernels::BF16ToF32(half[i]);
  } else {
    return absl::UnimplementedError(absl::StrCat(file.path(), ": tensor '", name, "' has type ",
                                                 GgmlTypeName(t->type),
                                                 "; vectors must be F32, F16 or BF16"));
  }
  owned_vectors_.push_back(std::move(owned));
  return owned_vectors_.back()->data();
}

kernels::WeightMatrix ModelWeights::Hold(const kernels::WeightMatrix& m) {
  weight_bytes_ += m.row_bytes * static_cast<uint64_t>(m.rows);
  return m;
}

absl::StatusOr<kernels::WeightMatrix> ModelWeights::Columns(const kernels::WeightMatrix& m,
                                                            IndexRange cols,
                                                            const std::string& name) {
  if (cols.begin == 0 && cols.end == m.cols) return m;
  auto storage = std::make_unique<std::vector<uint8_t>>();
  ASSIGN_OR_RETURN(kernels::WeightMatrix s,
                   ShardColumns(m, cols, absl::StrCat(file_path_, ": ", name), storage.get()));
  owned_matrices_.push_back(std::move(storage));
  return s;
}

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::Load(const GgufFile& file,
                                                                const ModelConfig& config,
                                                                LayerRange range) {
  return LoadShard(file, config, range, ShardSpec{});
}

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::LoadShard(const GgufFile& file,
                                                                     const ModelConfig& config,
                                                                     LayerRange range,
                                                                     ShardSpec shard) {
  if (range.begin < 0 || range.end > config.n_layer || range.begin >= range.end) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: layer range [%d,%d) is not inside the model's %d layers", file.path(), range.begin,
        range.end, config.n_layer));
  }
  if (absl::Status tp = CheckTensorParallel(config, shard.size); !tp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", tp.message()));
  }
  if (shard.rank < 0 || shard.rank >= shard.size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: rank %d outside the tensor-parallel group of %d", file.path(), shard.rank,
        shard.size));
  }
  std::unique_ptr<ModelWeights> w(new ModelWeights());
  w->config_ = ShardConfig(config, shard);
  w->model_config_ = config;
  w->shard_ = shard;
  w->range_ = range;
  w->file_path_ = file.path();
  w->vocab_rows_ = VocabShard(config.vocab_size, shard);
  const int64_t d = config.n_embd;
  const int64_t q_dim = static_cast<int64_t>(config.n_head) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.n_kv_head) * config.head_dim;
  const IndexRange q_rows = QueryDims(config, shard);
  const IndexRange kv_rows = KvDims(config, shard);
  const IndexRange ff_rows = FfnDims(config, shard);
  auto rows = [&](const std::string& name, int64_t n_rows, int64_t n_cols,
                  IndexRange part) -> absl::StatusOr<kernels::WeightMatrix> {
    ASSIGN_OR_RETURN(kernels::WeightMatrix m, w->Matrix(file, name, n_rows, n_cols));
    return w->Hold(SliceRows(m, part));
  };
  auto cols = [&](const std::string& name, int64_t n_rows, int64_t n_cols,
                  IndexRange part) -> absl::StatusOr<kernels::WeightMatrix> {
    ASSIGN_OR_RETURN(kernels::WeightMatrix m, w->Matrix(file, name, n_rows, n_cols));
    ASSIGN_OR_RETURN(kernels::WeightMatrix s, w->Columns(m, part, name));
    return w->Hold(s);
  };

  if (w->has_embedding()) {
    ASSIGN_OR_RETURN(w->token_embd_,
                     rows("token_embd.weight", config.vocab_size, d, w->vocab_rows_));
  }
  if (w->has_head()) {
    ASSIGN_OR_RETURN(w->output_norm_, w->Vector(file, "output_norm.weight", d));
    if (config.tied_embeddings) {
      if (w->has_embedding()) {
        w->output_ = w->token_embd_;
      } else {
        ASSIGN_OR_RETURN(w->output_,
                         rows("token_embd.weight", config.vocab_size, d, w->vocab_rows_));
      }
    } else {
      ASSIGN_OR_RETURN(w->output_, rows("output.weight", config.vocab_size, d, w->vocab_rows_));
    }
  }
  if (config.has_rope_freqs) {
    ASSIGN_OR_RETURN(const float* f, w->Vector(file, "rope_freqs.weight", config.rope_dim / 2));
    w->rope_freq_factors_.assign(f, f + config.rope_dim / 2);
  }
  if (config.rope_freq_scale != 1.0f) {
    // Linear scaling divides every angle by the factor: fold it into the divisors.
    if (w->rope_freq_factors_.empty()) w->rope_freq_factors_.assign(config.rope_dim / 2, 1.0f);
    for (float& f : w->rope_freq_factors_) f /= config.rope_freq_scale;
  }
  for (int l = range.begin; l < range.end; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    LayerWeights lw;
    ASSIGN_OR_RETURN(lw.attn_norm, w->Vector(file, p + "attn_norm.weight", d));
    ASSIGN_OR_RETURN(lw.ffn_norm, w->Vector(file, p + "ffn_norm.weight", d));
    // This shard's rows of Q, K and V inside a fused [q; k; v] tensor.
    const IndexRange fused_q = q_rows;
    const IndexRange fused_k{q_dim + kv_rows.begin, q_dim + kv_rows.end};
    const IndexRange fused_v{q_dim + kv_dim + kv_rows.begin, q_dim + kv_dim + kv_rows.end};
    if (config.fused_qkv) {
      const int64_t qkv_dim = q_dim + 2 * kv_dim;
      ASSIGN_OR_RETURN(kernels::WeightMatrix qkv, w->Matrix(file, p + "attn_qkv.weight", qkv_dim, d));
      lw.wq = w->Hold(SliceRows(qkv, fused_q));
      lw.wk = w->Hold(SliceRows(qkv, fused_k));
      lw.wv = w->Hold(SliceRows(qkv, fused_v));
      if (config.qkv_bias) {
        ASSIGN_OR_RETURN(const float* b, w->Vector(file, p + "attn_qkv.bias", qkv_dim));
        lw.bq = b + fused_q.begin;
        lw.bk = b + fused_k.begin;
        lw.bv = b + fused_v.begin;
      }
    } else {
      ASSIGN_OR_RETURN(lw.wq, rows(p + "attn_q.weight", q_dim, d, q_rows));
      ASSIGN_OR_RETURN(lw.wk, rows(p + "attn_k.weight", kv_dim, d, kv_rows));
      ASSIGN_OR_RETURN(lw.wv, rows(p + "attn_v.weight", kv_dim, d, kv_rows));
      if (config.qkv_bias) {
        ASSIGN_OR_RETURN(const float* bq, w->Vector(file, p + "attn_q.bias", q_dim));
        ASSIGN_OR_RETURN(const float* bk, w->Vector(file, p + "attn_k.bias", kv_dim));
        ASSIGN_OR_RETURN(const float* bv, w->Vector(file, p + "attn_v.bias", kv_dim));
        lw.bq = bq + q_rows.begin;
        lw.bk = bk + kv_rows.begin;
        lw.bv = bv + kv_rows.begin;
      }
    }
    ASSIGN_OR_RETURN(lw.wo, cols(p + "attn_output.weight", d, q_dim, q_rows));
    if (config.fused_gate_up) {
      ASSIGN_OR_RETURN(kernels::WeightMatrix gate_up,
                       w->Matrix(file, p + "ffn_up.weight", 2 * int64_t{config.n_ff}, d));
      lw.w_gate = w->Hold(SliceRows(gate_up, ff_rows));
      lw.w_up = w->Hold(
          SliceRows(gate_up, IndexRange{config.n_ff + ff_rows.begin, config.n_ff + ff_rows.end}));
    } else {
      ASSIGN_OR_RETURN(lw.w_gate, rows(p + "ffn_gate.weight", config.n_ff, d, ff_rows));
      ASSIGN_OR_RETURN(lw.w_up, rows(p + "ffn_up.weight", config.n_ff, d, ff_rows));
    }
    ASSIGN_OR_RETURN(lw.w_down, cols(p + "ffn_down.weight", d, config.n_ff, ff_rows));
    if (config.post_norms) {
      ASSIGN_OR_RETURN(lw.attn_post_norm, w->Vector(file, p + "post_attention_norm.weight", d));
      ASSIGN_OR_RETURN(lw.ffn_post_norm, w->Vector(file, p + "post_ffw_norm.weight", d));
    }
    w->layers_.push_back(lw);
  }
  return w;
}

}  // namespace tessera
