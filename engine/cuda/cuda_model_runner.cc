// CudaModelRunner, part two: a step's forward pass (staging, scratch,
// layers, the LM head, tensor-parallel joins, graph replay). Uploading the
// weights is in cuda_model_upload.cc.
#include "engine/cuda/cuda_model_runner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/step_validation.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"

namespace tessera {
namespace {

using kernels::DType;
using kernels::WeightMatrix;
using kernels::cuda::DeviceBuffer;

}  // namespace

CudaModelRunner::Graph::~Graph() {
  if (exec != nullptr) static_cast<void>(cudaGraphExecDestroy(exec));
}

CudaModelRunner::~CudaModelRunner() {
  // Work in flight may still read the buffers freed below.
  if (stream_.get() != nullptr) static_cast<void>(cudaStreamSynchronize(stream_.get()));
}

absl::Status CudaModelRunner::Validate(absl::Span<const SequenceStep> seqs,
                                       absl::Span<const float> hidden_in) const {
  if (seqs.empty()) return absl::InvalidArgumentError("CUDA runner: empty step");
  StepShapeLimits limits;
  limits.context_length = config_.context_length;
  limits.vocab_size = config_.vocab_size;
  limits.n_embd = config_.n_embd;
  limits.first_stage = first_;
  limits.kv_blocks = options_.kv_blocks;
  limits.block_size = options_.block_size;
  return ValidateStep(limits, seqs, hidden_in);
}

absl::StatusOr<CudaModelRunner::StepShape> CudaModelRunner::StageStep(
    absl::Span<const SequenceStep> seqs) {
  StepShape shape;
  for (const SequenceStep& s : seqs) {
    shape.tokens += s.num_tokens;
    // Only the last stage makes logits (as ModelRunner).
    if (last_) {
      shape.rows += s.logits == LogitsMode::kAll    ? s.num_tokens
                    : s.logits == LogitsMode::kLast ? 1
                                                    : 0;
    }
    shape.tables += static_cast<int64_t>(s.block_table.size());
  }
  const int64_t T = shape.tokens;
  const size_t count = static_cast<size_t>(3 * T + shape.rows + shape.tables);
  // This buffer's last copy (two steps ago) must be done before it is
  // refilled; the previous step may still be running.
  const int b = next_staging_;
  next_staging_ ^= 1;
  RETURN_IF_ERROR(staged_[b].Synchronize());
  kernels::cuda::PinnedBuffer& staging = staging_[b];
  RETURN_IF_ERROR(staging.Reserve(count * sizeof(int32_t)));
  int32_t* ids = staging.as<int32_t>();
  int32_t* positions = ids + T;
  int32_t* offsets = positions + T;
  int32_t* rows = offsets + T;
  int32_t* tables = rows + shape.rows;
  int64_t t = 0, r = 0, table_at = 0;
  for (const SequenceStep& s : seqs) {
    for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
      ids[t] = first_ ? s.tokens[i] : 0;  // later stages take hidden states
      positions[t] = s.start_pos + i;
      offsets[t] = static_cast<int32_t>(table_at);
      if (last_ && (s.logits == LogitsMode::kAll ||
                    (s.logits == LogitsMode::kLast && i == s.num_tokens - 1))) {
        rows[r++] = static_cast<int32_t>(t);
      }
    }
    std::copy(s.block_table.begin(), s.block_table.end(), tables + table_at);
    table_at += static_cast<int64_t>(s.block_table.size());
  }
  RETURN_IF_ERROR(Reserve(shape));
  const cudaError_t copied = cudaMemcpyAsync(ints_.data(), ids, count * sizeof(int32_t),
                                             cudaMemcpyHostToDevice, stream_.get());
  const absl::Status recorded = copied == cudaSuccess ? staged_[b].Record(stream_.get())
                                                      : absl::OkStatus();
  if (copied != cudaSuccess || !recorded.ok()) {
    // The event may still hold an older record: wait for the copy here so
    // the buffer is never refilled under it.
    static_cast<void>(stream_.Synchronize());
    if (copied != cudaSuccess) {
      return kernels::cuda::CudaStatus(copied, "cudaMemcpyAsync", __FILE__, __LINE__);
    }
    return recorded;
  }
  return shape;
}

absl::Status CudaModelRunner::Reserve(const StepShape& shape) {
  const ModelConfig& c = config_;
  const size_t T = static_cast<size_t>(shape.tokens);
  const size_t f = sizeof(float);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_kv_head) * c.head_dim;
  const size_t per_rank = static_cast<size_t>(VocabRowsPerRank(c.vocab_size, shard_.size));
  const std::pair<DeviceBuffer*, size_t> wants[] = {
      {&x_, T * c.n_embd * f},      {&h_, T * c.n_embd * f},      {&q_, T * q_dim * f},
      {&k_, T * kv_dim * f},        {&v_, T * kv_dim * f},        {&attn_, T * q_dim * f},
      {&gate_, T * c.n_ff * f},     {&up_, T * c.n_ff * f},       {&ffn_, T * c.n_embd * f},
      {&logits_, static_cast<size_t>(std::max<int64_t>(shape.rows, 1)) * c.vocab_size * f},
      {&local_logits_, shard_.size > 1 ? shape.rows * per_rank * f : 0},
      {&gathered_logits_, shard_.size > 1 ? shard_.size * shape.rows * per_rank * f : 0},
      {&partials_, shard_.size > 2 && shape.tokens <= kernels::cuda::kGemvMaxTokens
                       ? shard_.size * T * c.n_embd * f
                       : 0},
      {&ints_, (3 * T + shape.rows + shape.tables) * sizeof(int32_t)},
      {&attn_split_, shape.tokens <= kernels::cuda::kAttentionDecodeMaxTokens
                         ? kernels::cuda::AttentionDecodeScratchBytes(shape.tokens, c.n_head)
                         : 0},
      // MatMul's 16-bit copy of its input: the widest input of any product
      // over all the step's tokens. Sized here, with the same headroom, so
      // that MatMul never regrows it under a captured graph.
      {&blas_->conversion_scratch(),
       converts_activations_ ? T * static_cast<size_t>(max_matmul_cols_) * 2 : 0},
      // The BF16 copy of the largest quantised matrix, for steps past Gemv.
      {&blas_->dequantized_scratch(),
       shape.tokens > kernels::cuda::kGemvMaxTokens ? max_dequantized_bytes_ : 0}};
  bool drained = false;
  for (const auto& [buf, bytes] : wants) {
    // Grow with headroom so that steps of slowly rising size (longer block
    // tables) do not reallocate. A graph that baked in an old address is
    // dropped by the address check in ForwardDevice, whatever grew.
    if (bytes <= buf->bytes()) continue;
    // The previous step may still be running on the buffers about to be
    // freed (staging no longer waits for it); wait once, on this rare path,
    // rather than rely on cudaFree's implicit synchronisation.
    if (!drained) RETURN_IF_ERROR(stream_.Synchronize());
    drained = true;
    RETURN_IF_ERROR(buf->Reserve(bytes + bytes / 2));
  }
  return absl::OkStatus();
}

StepGraphCache<CudaModelRunner::Graph>::Addresses CudaModelRunner::CapturedAddresses() const {
  StepGraphCache<Graph>::Addresses a = {
      x_.data(),    h_.data(),      q_.data(),     k_.data(),
      v_.data(),    attn_.data(),   gate_.data(),  up_.data(),
      ffn_.data(),  logits_.data(), ints_.data(),  blas_->conversion_scratch().data(),
      blas_->workspace().data(), attn_split_.data(), blas_->dequantized_scratch().data(),
      local_logits_.data(), gathered_logits_.data(), partials_.data()};
  for (const DeviceBuffer& b : kv_k_) a.push_back(b.data());
  for (const DeviceBuffer& b : kv_v_) a.push_back(b.data());
  return a;
}

absl::Status CudaModelRunner::RunLayer(int layer, const StepShape& shape) {
  namespace kc = kernels::cuda;
  const ModelConfig& c = config_;
  const DeviceLayer& w = layers_[layer - range_.begin];
  cudaStream_t s = stream_.get();
  const int64_t T = shape.tokens;
  const int64_t d = c.n_embd;
  const int32_t* positions = ints_.as<int32_t>() + T;
  const int32_t* offsets = positions + T;
  const int32_t* tables = ints_.as<int32_t>() + 3 * T + shape.rows;

  // h_ holds RmsNorm(x, attn_norm), left by the previous layer's last
  // AddRmsNorm (or Enqueue's first norm).
  {
    const WeightMatrix qkv[] = {w.wq, w.wk, w.wv};
    float* const out[] = {q_.as<float>(), k_.as<float>(), v_.as<float>()};
    RETURN_IF_ERROR(kc::MatMulShared(*blas_, qkv, 3, h_.as<float>(), T, out, s));
  }
  kernels::KvLayer kv;
  kv.k = kv_k_[layer - range_.begin].data();
  kv.v = kv_v_[layer - range_.begin].data();
  kv.dtype = options_.kv_dtype;
  kv.num_blocks = options_.kv_blocks;
  kv.block_size = options_.block_size;
  kv.n_kv_head = c.n_kv_head;
  kv.head_dim = c.head_dim;
  // Biases after the projections and before RoPE, as ModelRunner adds them;
  // then the rotated K and the V go to the cache. One launch.
  RETURN_IF_ERROR(kc::QkvRopeKvWrite(q_.as<float>(), k_.as<float>(), v_.as<float>(), w.bq, w.bk,
                                     w.bv, positions, T, c.n_head, rope_, kv, tables, offsets,
                                     s));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  // Decode-sized steps split each token's context over blocks (flash
  // decoding); prefill steps have enough (token, head) pairs already.
  if (T <= kc::kAttentionDecodeMaxTokens) {
    RETURN_IF_ERROR(kc::AttentionDecodeBatch(q_.as<float>(), positions, T, c.n_head, kv, tables,
                                             offsets, scale, attn_split_.as<float>(),
                                             attn_.as<float>(), s));
  } else {
    RETURN_IF_ERROR(kc::AttentionBatch(q_.as<float>(), positions, T, c.n_head, kv, tables,
                                       offsets, scale, attn_.as<float>(), s));
  }
  RETURN_IF_ERROR(kc::MatMul(*blas_, w.wo, attn_.as<float>(), T, ffn_.as<float>(), s));
  RETURN_IF_ERROR(JoinRanks(ffn_.as<float>(), T, d));
  // Post-norms (glm4) normalise each block's output before its residual add.
  if (w.attn_post_norm != nullptr) {
    RETURN_IF_ERROR(kc::RmsNorm(ffn_.as<float>(), w.attn_post_norm, T, d, c.rms_eps,
                                ffn_.as<float>(), s));
  }
  // x += attention; h = RmsNorm(x, ffn_norm).
  RETURN_IF_ERROR(kc::AddRmsNorm(ffn_.as<float>(), x_.as<float>(), w.ffn_norm, T, d, c.rms_eps,
                                 h_.as<float>(), s));
  {
    const WeightMatrix gate_up[] = {w.w_gate, w.w_up};
    float* const out[] = {gate_.as<float>(), up_.as<float>()};
    RETURN_IF_ERROR(kc::MatMulShared(*blas_, gate_up, 2, h_.as<float>(), T, out, s));
  }
  RETURN_IF_ERROR(kc::SwiGlu(gate_.as<float>(), up_.as<float>(), T * c.n_ff, gate_.as<float>(), s));
  RETURN_IF_ERROR(kc::MatMul(*blas_, w.w_down, gate_.as<float>(), T, ffn_.as<float>(), s));
  RETURN_IF_ERROR(JoinRanks(ffn_.as<float>(), T, d));
  if (w.ffn_post_norm != nullptr) {
    RETURN_IF_ERROR(kc::RmsNorm(ffn_.as<float>(), w.ffn_post_norm, T, d, c.rms_eps,
                                ffn_.as<float>(), s));
  }
  // x += FFN; h = RmsNorm(x, the next layer's attn_norm, or the final norm).
  // The range's last layer on a stage that is not last only adds: its x is
  // the stage's output.
  if (layer + 1 == range_.end && !last_) return kc::Add(ffn_.as<float>(), T * d, x_.as<float>(), s);
  const float* next_norm =
      layer + 1 < range_.end ? layers_[layer + 1 - range_.begin].attn_norm : output_norm_;
  return kc::AddRmsNorm(ffn_.as<float>(), x_.as<float>(), next_norm, T, d, c.rms_eps,
                        h_.as<float>(), s);
}

absl::Status CudaModelRunner::Enqueue(const StepShape& shape) {
  namespace kc = kernels::cuda;
  const ModelConfig& c = config_;
  cudaStream_t s = stream_.get();
  const int64_t T = shape.tokens;
  const int32_t* ids = ints_.as<int32_t>();
  const int32_t* rows = ids + 3 * T;
  // The first stage embeds its tokens; a later one's x_ already holds the
  // previous stage's hidden states (ForwardDevice copies them in before).
  if (first_) {
    // A shard's vocabulary rows, zeros for the others' ids; the sum over
    // the ranks is then each token's embedding row exactly.
    RETURN_IF_ERROR(
        kc::DequantizeRows(token_embd_, ids, T, x_.as<float>(), s, vocab_rows_.begin));
    RETURN_IF_ERROR(JoinRanks(x_.as<float>(), T, c.n_embd));
  }
  RETURN_IF_ERROR(
      kc::RmsNorm(x_.as<float>(), layers_[0].attn_norm, T, c.n_embd, c.rms_eps, h_.as<float>(), s));
  for (int l = range_.begin; l < range_.end; ++l) RETURN_IF_ERROR(RunLayer(l, shape));
  if (shape.rows == 0) return absl::OkStatus();
  // The last layer left RmsNorm(x, output_norm) of every token in h_;
  // gather the rows that need logits (h_ viewed as an F32 matrix of T rows)
  // into ffn_, which is free now.
  WeightMatrix normed;
  normed.dtype = DType::kF32;
  normed.data = h_.data();
  normed.rows = T;
  normed.cols = c.n_embd;
  normed.row_bytes = sizeof(float) * c.n_embd;
  RETURN_IF_ERROR(kc::DequantizeRows(normed, rows, shape.rows, ffn_.as<float>(), s));
  return HeadLogits(shape);
}

absl::Status CudaModelRunner::JoinRanks(float* data, int64_t tokens, int64_t width) {
  if (collective_ == nullptr) return absl::OkStatus();
  const int64_t n = tokens * width;
  // Two ranks: any order of addition gives the same bits. More: NCCL's
  // order depends on the message size, so a token's sums would depend on
  // the step's token count; decode-sized steps gather the partials and add
  // them in rank order instead (as the CPU group does), which keeps a
  // decoding sequence's output independent of its batch, as for one GPU.
  if (shard_.size <= 2 || tokens > kernels::cuda::kGemvMaxTokens) {
    return collective_->AllReduceSum(data, n, stream_.get());
  }
  RETURN_IF_ERROR(collective_->AllGather(data, n, partials_.as<float>(), stream_.get()));
  return kernels::cuda::SumParts(partials_.as<float>(), shard_.size, n, data, stream_.get());
}

absl::Status CudaModelRunner::HeadLogits(const StepShape& shape) {
  namespace kc = kernels::cuda;
  cudaStream_t s = stream_.get();
  if (collective_ == nullptr) {
    return kc::MatMul(*blas_, output_, ffn_.as<float>(), shape.rows, logits_.as<float>(), s);
  }
  // Each rank multiplies by its vocabulary rows into [rows][its rows]; all
  // ranks send the same count (the last may hold fewer rows, so its tail is
  // never read), and rank k's block lands at columns VocabShard(k) of each
  // logit row.
  const int64_t vocab = config_.vocab_size;
  const int64_t per = VocabRowsPerRank(vocab, shard_.size);
  RETURN_IF_ERROR(
      kc::MatMul(*blas_, output_, ffn_.as<float>(), shape.rows, local_logits_.as<float>(), s));
  RETURN_IF_ERROR(collective_->AllGather(local_logits_.as<float>(), shape.rows * per,
                                         gathered_logits_.as<float>(), s));
  for (int k = 0; k < shard_.size; ++k) {
    const IndexRange part = VocabShard(vocab, ShardSpec{k, shard_.size});
    const float* src = gathered_logits_.as<float>() + static_cast<int64_t>(k) * shape.rows * per;
    CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
        logits_.as<float>() + part.begin, vocab * sizeof(float), src,
        part.size() * sizeof(float), part.size() * sizeof(float), shape.rows,
        cudaMemcpyDeviceToDevice, s));
  }
  return absl::OkStatus();
}

absl::StatusOr<const float*> CudaModelRunner::ForwardDevice(absl::Span<const SequenceStep> seqs,
                                                            absl::Span<const float> hidden_in,
                                                            int64_t* rows) {
  RETURN_IF_ERROR(Validate(seqs, hidden_in));
  // The calling thread may not be the one that created the runner.
  CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
  ASSIGN_OR_RETURN(const StepShape shape, StageStep(seqs));
  *rows = shape.rows;
  if (!first_) {
    // Into x_, outside any graph: a captured step reads x_, never this host
    // buffer. Stream-ordered after the previous step.
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(x_.data(), hidden_in.data(),
                                         hidden_in.size() * sizeof(float),
                                         cudaMemcpyHostToDevice, stream_.get()));
  }
  const std::pair<int64_t, int64_t> key{shape.tokens, shape.rows};
  const bool graph_shape = shape.tokens <= options_.graph_max_tokens && graph_status_.ok();
  if (graph_shape) {
    const StepGraphCache<Graph>::Addresses now = CapturedAddresses();
    if (Graph* g = graphs_.Find(key, now)) {
      CUDA_RETURN_IF_ERROR(cudaGraphLaunch(g->exec, stream_.get()));
      ++graph_replays_;
      return last_ ? logits_.as<float>() : nullptr;
    }
    // Capture on the second eager run of a shape with these addresses: the
    // first has grown every buffer and built every cuBLASLt plan, so
    // capturing allocates nothing.
    if (graphs_.ShouldCapture(key, now)) {
      cudaGraph_t graph = nullptr;
      CUDA_RETURN_IF_ERROR(
          cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeThreadLocal));
      const absl::Status enqueued = Enqueue(shape);
      const cudaError_t ended = cudaStreamEndCapture(stream_.get(), &graph);
      auto g = std::make_unique<Graph>();
      cudaError_t made = cudaErrorUnknown;
      if (enqueued.ok() && ended == cudaSuccess) {
        made = cudaGraphInstantiate(&g->exec, graph, 0);
      }
      if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
      // Capture must not have moved anything it baked in.
      const bool stable = CapturedAddresses() == now;
      if (enqueued.ok() && ended == cudaSuccess && made == cudaSuccess && stable) {
        CUDA_RETURN_IF_ERROR(cudaGraphLaunch(g->exec, stream_.get()));
        graphs_.Insert(key, now, std::move(g));
        ++graph_replays_;
        return last_ ? logits_.as<float>() : nullptr;
      }
      // Give up on graphs for good and run eagerly; graph_status() says why.
      static_cast<void>(cudaGetLastError());
      graph_status_ =
          !enqueued.ok()           ? enqueued
          : ended != cudaSuccess   ? kernels::cuda::CudaStatus(ended, "cudaStreamEndCapture",
                                                               __FILE__, __LINE__)
          : made != cudaSuccess    ? kernels::cuda::CudaStatus(made, "cudaGraphInstantiate",
                                                               __FILE__, __LINE__)
                                   : absl::InternalError(
                                      "CUDA runner: a buffer moved during graph capture");
    }
  }
  RETURN_IF_ERROR(Enqueue(shape));
  return last_ ? logits_.as<float>() : nullptr;
}

absl::Status CudaModelRunner::Forward(absl::Span<const SequenceStep> seqs,
                                      absl::Span<const float> hidden_in, StepOutput* out) {
  int64_t rows = 0;
  RETURN_IF_ERROR(ForwardDevice(seqs, hidden_in, &rows).status());
  int64_t tokens = 0;
  for (const SequenceStep& s : seqs) tokens += s.num_tokens;
  return ReadOutput(tokens, rows, out);
}

absl::Status CudaModelRunner::ReadOutput(int64_t tokens, int64_t rows, StepOutput* out) {
  out->hidden.clear();
  out->logits.clear();
  out->logit_rows = 0;
  if (!last_) {
    out->hidden.resize(static_cast<size_t>(tokens) * config_.n_embd);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out->hidden.data(), x_.data(),
                                         out->hidden.size() * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_.get()));
    return stream_.Synchronize();
  }
  out->logits.resize(static_cast<size_t>(rows) * config_.vocab_size);
  out->logit_rows = rows;
  if (rows > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out->logits.data(), logits_.data(),
                                         out->logits.size() * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_.get()));
  }
  return stream_.Synchronize();
}

void CudaModelRunner::DropGraphs() {
  graphs_.Clear();
  if (graph_status_.ok()) {
    graph_status_ = absl::CancelledError("CUDA runner: graphs dropped after a failure");
  }
}

std::string CudaModelRunner::device() const {
  if (shard_.size == 1) return absl::StrFormat("cuda:%d", options_.device);
  return absl::StrFormat("cuda:%d, rank %d of %d (%s)", options_.device, shard_.rank, shard_.size,
                         collective_->name());
}

}  // namespace tessera
