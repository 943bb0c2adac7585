// CudaModelRunner, part one: getting a ModelWeights (a layer range, or a
// tensor-parallel shard of one) onto the device, and the KV pool. The
// forward pass is in cuda_model_runner.cc.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/cuda/cuda_model_runner.h"
#include "kernels/cuda/cuda_status.h"

namespace tessera {
namespace {

using kernels::DType;
using kernels::WeightMatrix;
using kernels::cuda::DeviceBuffer;

constexpr int kMaxHeadDim = 256;

}  // namespace
absl::StatusOr<std::unique_ptr<CudaModelRunner>> CudaModelRunner::Create(
    const ModelWeights& weights, const CudaRunnerOptions& options,
    DeviceCollective* collective) {
  const ModelConfig& c = weights.config();
  // Every departure from the Llama graph that ModelConfig describes is
  // implemented: rotate-half and partial RoPE (RopeParams), Q/K/V biases and
  // post-norms (UploadLayer, RunLayer). Fused QKV / gate-up tensors arrive as
  // row views (ModelWeights splits them), so they need nothing here.
  const ShardSpec shard = weights.shard();
  if (shard.size > 1 && (collective == nullptr || collective->size() != shard.size ||
                         collective->rank() != shard.rank)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "CUDA runner: the weights are shard %d of %d but the runner's collective is %s",
        shard.rank, shard.size,
        collective == nullptr
            ? std::string("missing")
            : absl::StrFormat("rank %d of %d", collective->rank(), collective->size())));
  }
  if (c.head_dim > kMaxHeadDim || c.rope_dim > c.head_dim || c.n_kv_head <= 0 ||
      c.n_head % c.n_kv_head != 0) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA runner: head_dim %d (at most %d), rope_dim %d, %d heads over %d KV heads",
        c.head_dim, kMaxHeadDim, c.rope_dim, c.n_head, c.n_kv_head));
  }
  if (options.kv_dtype != DType::kF32 && options.kv_dtype != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA runner: KV cache type ",
                                                   kernels::DTypeName(options.kv_dtype)));
  }
  if (options.kv_blocks <= 0 || options.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA runner: %d KV blocks of %d positions", options.kv_blocks, options.block_size));
  }
  if (options.device < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("CUDA runner: device %d", options.device));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  std::unique_ptr<CudaModelRunner> r(new CudaModelRunner());
  r->config_ = c;
  r->model_config_ = weights.model_config();
  r->options_ = options;
  r->shard_ = shard;
  r->vocab_rows_ = weights.vocab_rows();
  r->collective_ = shard.size > 1 ? collective : nullptr;
  // A collective that synchronises with the host cannot sit inside a graph.
  if (r->collective_ != nullptr && !r->collective_->capturable()) {
    r->options_.graph_max_tokens = 0;
  }
  r->range_ = weights.range();
  r->first_ = weights.has_embedding();
  r->last_ = weights.has_head();
  ASSIGN_OR_RETURN(r->stream_, kernels::cuda::Stream::Create());
  for (kernels::cuda::Event& e : r->staged_) {
    ASSIGN_OR_RETURN(e, kernels::cuda::Event::Create());
  }
  ASSIGN_OR_RETURN(r->blas_, kernels::cuda::BlasLt::Create());
  RETURN_IF_ERROR(r->Upload(weights));

  const size_t elem = options.kv_dtype == DType::kF16 ? 2 : 4;
  const size_t kv_bytes = static_cast<size_t>(options.kv_blocks) * options.block_size *
                          c.n_kv_head * c.head_dim * elem;
  r->kv_bytes_ = 2 * kv_bytes * static_cast<uint64_t>(r->range_.size());
  for (int l = r->range_.begin; l < r->range_.end; ++l) {
    ASSIGN_OR_RETURN(DeviceBuffer k, DeviceBuffer::Allocate(kv_bytes));
    ASSIGN_OR_RETURN(DeviceBuffer v, DeviceBuffer::Allocate(kv_bytes));
    // Zeroed like the CPU cache, so an unwritten slot can never hold NaN.
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(k.data(), 0, kv_bytes, r->stream_.get()));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(v.data(), 0, kv_bytes, r->stream_.get()));
    r->kv_k_.push_back(std::move(k));
    r->kv_v_.push_back(std::move(v));
  }
  RETURN_IF_ERROR(r->stream_.Synchronize());
  return r;
}

absl::StatusOr<WeightMatrix> CudaModelRunner::UploadMatrix(const WeightMatrix& m,
                                                           const std::string& name) {
  const bool quantised = m.dtype == DType::kQ8_0 || m.dtype == DType::kQ4_K;
  if (m.dtype != DType::kF32 && m.dtype != DType::kF16 && m.dtype != DType::kBF16 && !quantised) {
    return absl::UnimplementedError(absl::StrCat("CUDA runner: tensor '", name, "' is ",
                                                 kernels::DTypeName(m.dtype),
                                                 "; the GPU takes F32, F16, BF16, Q8_0 and Q4_K "
                                                 "weights"));
  }
  const size_t bytes = m.row_bytes * static_cast<size_t>(m.rows);
  ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::Allocate(bytes));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(buf.data(), m.data, bytes, cudaMemcpyHostToDevice));
  WeightMatrix d = m;
  d.data = buf.data();
  converts_activations_ |= m.dtype != DType::kF32;
  max_matmul_cols_ = std::max(max_matmul_cols_, m.cols);
  // Prefill-sized products widen a quantised matrix to BF16 per call.
  if (quantised) {
    max_dequantized_bytes_ = std::max(max_dequantized_bytes_, static_cast<size_t>(m.rows * m.cols) * 2);
  }
  device_weight_bytes_ += bytes;
  weight_buffers_.push_back(std::move(buf));
  return d;
}

absl::StatusOr<const float*> CudaModelRunner::UploadVector(const float* v, int64_t n) {
  ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::Allocate(sizeof(float) * n));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(buf.data(), v, sizeof(float) * n, cudaMemcpyHostToDevice));
  const float* d = buf.as<float>();
  device_weight_bytes_ += sizeof(float) * n;
  weight_buffers_.push_back(std::move(buf));
  return d;
}

absl::StatusOr<CudaModelRunner::DeviceLayer> CudaModelRunner::UploadLayer(const LayerWeights& w,
                                                                          int layer) {
  const std::string p = absl::StrCat("blk.", layer, ".");
  const int64_t d = config_.n_embd;
  DeviceLayer l;
  ASSIGN_OR_RETURN(l.wq, UploadMatrix(w.wq, p + "attn_q.weight"));
  ASSIGN_OR_RETURN(l.wk, UploadMatrix(w.wk, p + "attn_k.weight"));
  ASSIGN_OR_RETURN(l.wv, UploadMatrix(w.wv, p + "attn_v.weight"));
  ASSIGN_OR_RETURN(l.wo, UploadMatrix(w.wo, p + "attn_output.weight"));
  ASSIGN_OR_RETURN(l.w_gate, UploadMatrix(w.w_gate, p + "ffn_gate.weight"));
  ASSIGN_OR_RETURN(l.w_up, UploadMatrix(w.w_up, p + "ffn_up.weight"));
  ASSIGN_OR_RETURN(l.w_down, UploadMatrix(w.w_down, p + "ffn_down.weight"));
  ASSIGN_OR_RETURN(l.attn_norm, UploadVector(w.attn_norm, d));
  ASSIGN_OR_RETURN(l.ffn_norm, UploadVector(w.ffn_norm, d));
  // The optional vectors: absent ones stay nullptr and RunLayer skips them,
  // as ModelRunner does. Sizes are ModelWeights': this (whole-model) shard's
  // Q and KV rows, and n_embd for the post-norms.
  const int64_t q_dim = static_cast<int64_t>(config_.n_head) * config_.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config_.n_kv_head) * config_.head_dim;
  auto optional = [&](const float* host, int64_t n, const float** device) -> absl::Status {
    if (host == nullptr) return absl::OkStatus();
    ASSIGN_OR_RETURN(*device, UploadVector(host, n));
    bytes_read_per_token_ += sizeof(float) * static_cast<uint64_t>(n);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(optional(w.bq, q_dim, &l.bq));
  RETURN_IF_ERROR(optional(w.bk, kv_dim, &l.bk));
  RETURN_IF_ERROR(optional(w.bv, kv_dim, &l.bv));
  RETURN_IF_ERROR(optional(w.attn_post_norm, d, &l.attn_post_norm));
  RETURN_IF_ERROR(optional(w.ffn_post_norm, d, &l.ffn_post_norm));
  for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
    bytes_read_per_token_ += m->row_bytes * static_cast<uint64_t>(m->rows);
  }
  bytes_read_per_token_ += 2 * sizeof(float) * static_cast<uint64_t>(d);
  return l;
}

absl::Status CudaModelRunner::Upload(const ModelWeights& weights) {
  const ModelConfig& c = config_;
  if (first_) {
    ASSIGN_OR_RETURN(token_embd_, UploadMatrix(weights.token_embedding(), "token_embd.weight"));
    bytes_read_per_token_ += token_embd_.row_bytes;
  }
  if (last_) {
    if (first_ && weights.output().data == weights.token_embedding().data) {
      output_ = token_embd_;  // tied: one copy on the device too
    } else {
      ASSIGN_OR_RETURN(output_, UploadMatrix(weights.output(), "output.weight"));
    }
    ASSIGN_OR_RETURN(output_norm_, UploadVector(weights.output_norm(), c.n_embd));
    bytes_read_per_token_ += output_.row_bytes * static_cast<uint64_t>(output_.rows) +
                             sizeof(float) * c.n_embd;
  }
  rope_.head_dim = c.head_dim;
  rope_.rot_dim = c.rope_dim;
  rope_.freq_base = c.rope_freq_base;
  rope_.neox = c.rope_neox;
  if (weights.rope_freq_factors() != nullptr) {
    ASSIGN_OR_RETURN(rope_.freq_factors, UploadVector(weights.rope_freq_factors(), c.rope_dim / 2));
  }
  for (int l = range_.begin; l < range_.end; ++l) {
    ASSIGN_OR_RETURN(DeviceLayer dl, UploadLayer(weights.layer(l), l));
    layers_.push_back(dl);
  }
  return absl::OkStatus();
}

}  // namespace tessera
