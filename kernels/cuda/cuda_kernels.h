// The CUDA implementation of the op interface of kernels/kernels.h.
//
// Same names and argument order as the CPU ops, in namespace
// tessera::kernels::cuda, with two differences: every pointer is a DEVICE
// pointer (WeightMatrix::data, RopeParams::freq_factors, KvLayer::k/v, block
// tables and positions included), and every op takes the stream it is
// enqueued on and returns a Status (launch errors are checked; execution is
// asynchronous, so a fault inside a kernel surfaces at the next synchronising
// call). One file per op family: matmul.cu (and gemv.cu), embedding.cu,
// norm.cu, rope.cu, attention.cu, activation.cu, sampling.cu, and fused.cu
// for stages of a layer fused into one launch. Each file opens with the CPU
// reference it mirrors.
//
// Numerics against the CPU oracle (what tests/cuda checks):
//   - MatMul of up to kGemvMaxTokens tokens (decode steps) runs Gemv
//     (gemv.cu): float32 activations times exactly widened weights, summed
//     in float32 in a fixed order, as the CPU does (only the order differs).
//     Q8_0 and Q4_K weights are decoded in the kernel to exactly the CPU's
//     DequantizeRow values; the CPU's block kernels quantise the activations
//     to int8 where the GPU keeps them float32, so those two differ by that
//     rounding (about 1e-2 relative; the GPU is the closer to float64).
//   - Q8_0/Q4_K MatMul of more tokens: the matrix dequantised to BF16 per
//     call (BlasLt::dequantized_scratch), then as BF16 weights below.
//   - MatMul of more tokens (prefill) runs cuBLASLt: F32 weights in float32
//     (no TF32); F16/BF16 weights with the activations rounded to the
//     weight's 16-bit type first (tensor-core inputs share a type) and the
//     products accumulated in float32, so results differ from the CPU by
//     about one 16-bit rounding of x (relative ~2^-9 per element, much less
//     for the whole dot product).
//   - RmsNorm, Rope, SwiGlu, Add, AddBias, KvWrite: per element the same float
//     operations in the same order (compiled with --fmad=false); only the
//     CUDA exp/sin/cos differ from glibc's by an ulp or two.
//   - Attention, Softmax: the same formulae, with a parallel reduction order
//     and an online (running max) softmax in Attention.
// Batch invariance: every op computes each output row from that row's inputs
// alone with a fixed order, so rows do not depend on what else is in the
// batch, with one exception: MatMul steps of more than kGemvMaxTokens tokens
// go through cuBLASLt, which may choose a different algorithm (summation
// order) for a different token count. Decode-sized steps (up to
// kGemvMaxTokens tokens in all) are bitwise batch-invariant.
//
// Thread-safety: the ops are reentrant; a BlasLt or SamplerWorkspace is used
// by one thread at a time.
#ifndef TESSERA_KERNELS_CUDA_CUDA_KERNELS_H_
#define TESSERA_KERNELS_CUDA_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/blas_lt.h"
#include "kernels/dtype.h"
#include "kernels/kernels.h"

namespace tessera::kernels::cuda {

// The most tokens, and matrices sharing one input, that Gemv takes.
inline constexpr int64_t kGemvMaxTokens = 8;
inline constexpr int kGemvMaxMatrices = 4;

// ys[i][t*ws[i].rows + o] = sum_c widen(W_i[o][c]) * x[t*cols + c] for
// t < tokens <= kGemvMaxTokens and i < count <= kGemvMaxMatrices, in one
// launch; every matrix has the same dtype (F32, F16, BF16, Q8_0 or Q4_K) and
// cols.
// float32 activations, float32 sums in a fixed order per (row, token).
absl::Status Gemv(const WeightMatrix* ws, size_t count, const float* x, int64_t tokens,
                  float* const* ys, cudaStream_t stream);

// y[t*w.rows + o] = sum_i W[o][i] * x[t*w.cols + i] for t in [0, tokens):
// Gemv up to kGemvMaxTokens tokens, cuBLASLt beyond.
// w.dtype must be F32, F16, BF16, Q8_0 or Q4_K (UNIMPLEMENTED otherwise);
// w.row_bytes a multiple of the element size (whole blocks for Q8_0/Q4_K).
// x and y must not alias.
absl::Status MatMul(BlasLt& blas, const WeightMatrix& w, const float* x, int64_t tokens,
                    float* y, cudaStream_t stream);

// ys[i] = MatMul(ws[i], x, tokens) for i in [0, count): one Gemv launch for
// decode-sized steps when every matrix shares dtype and cols (Q/K/V,
// gate/up); otherwise the activations converted to the 16-bit type once for
// cuBLASLt, or separate MatMul calls. No ys[i] may alias x.
absl::Status MatMulShared(BlasLt& blas, const WeightMatrix* ws, size_t count, const float* x,
                          int64_t tokens, float* const* ys, cudaStream_t stream);

// out[i][0..w.cols) = row ids[i] of `w` widened (F32/F16/BF16) or decoded
// (Q8_0/Q4_K) to float32, for i in [0, n)
// (the token-embedding lookup; DequantizeRow for a batch of rows). `ids` is a
// device array. Row j of `w` is id id_base + j (a vocabulary shard of a
// tensor-parallel rank starts at id_base); an id outside [id_base, id_base +
// w.rows) gets a row of zeros, as the CPU shard's lookup does.
absl::Status DequantizeRows(const WeightMatrix& w, const int32_t* ids, int64_t n, float* out,
                            cudaStream_t stream, int64_t id_base = 0);

// y = x / sqrt(mean(x^2) + eps) * weight, per token. x may equal y.
absl::Status RmsNorm(const float* x, const float* weight, int64_t tokens, int64_t dim,
                     float eps, float* y, cudaStream_t stream);

// Rotary embedding in place on x[tokens][heads][head_dim], as kernels::Rope,
// "normal" (adjacent pairs) or, with params.neox, rotate-half pairs
// (i, i + rot_dim/2). params.freq_factors, if set, is a device pointer.
absl::Status Rope(float* x, const int32_t* positions, int64_t tokens, int heads,
                  const RopeParams& params, cudaStream_t stream);

// As kernels::KvWrite for one sequence (block_table is that sequence's).
absl::Status KvWrite(const KvLayer& kv, const int32_t* block_table, const int32_t* positions,
                     int64_t tokens, const float* k_new, const float* v_new,
                     cudaStream_t stream);

// As kernels::Attention for one sequence: decode (tokens = 1) and prefill
// chunks alike, causal, grouped-query (head h reads KV head h / (n_head /
// n_kv_head)).
absl::Status Attention(const float* q, const int32_t* positions, int64_t tokens, int n_head,
                       const KvLayer& kv, const int32_t* block_table, float scale, float* out,
                       cudaStream_t stream);

// Batched forms for a step that mixes sequences, so a step costs one launch
// per layer instead of one per sequence: token t belongs to the sequence
// whose block table starts at block_tables + table_offsets[t] (both device
// arrays). Per token the result is exactly that of the single-sequence op.
absl::Status KvWriteBatch(const KvLayer& kv, const int32_t* block_tables,
                          const int32_t* table_offsets, const int32_t* positions,
                          int64_t tokens, const float* k_new, const float* v_new,
                          cudaStream_t stream);
absl::Status AttentionBatch(const float* q, const int32_t* positions, int64_t tokens,
                            int n_head, const KvLayer& kv, const int32_t* block_tables,
                            const int32_t* table_offsets, float scale, float* out,
                            cudaStream_t stream);

// AttentionBatch for decode-sized steps (at most kAttentionDecodeMaxTokens
// tokens), split over each token's context ("flash decoding": up to 16
// chunks of 64+ positions, one block each, then a merge in chunk order), so
// a single long sequence keeps the GPU busy. `scratch` holds
// AttentionDecodeScratchBytes(tokens, n_head) bytes of device memory. Per
// token the split depends only on its own position, so results do not
// depend on the batch; they differ from AttentionBatch's by float rounding
// (another summation order).
inline constexpr int64_t kAttentionDecodeMaxTokens = 8;
size_t AttentionDecodeScratchBytes(int64_t tokens, int n_head);
absl::Status AttentionDecodeBatch(const float* q, const int32_t* positions, int64_t tokens,
                                  int n_head, const KvLayer& kv, const int32_t* block_tables,
                                  const int32_t* table_offsets, float scale, float* scratch,
                                  float* out, cudaStream_t stream);

// Fused stages (fused.cu), bitwise the unfused sequence they replace:
// x += delta, then y = RmsNorm(x, weight) per token (x updated in place;
// y must not alias x or delta).
absl::Status AddRmsNorm(const float* delta, float* x, const float* weight, int64_t tokens,
                        int64_t dim, float eps, float* y, cudaStream_t stream);
// AddBias on q, k and v (each bias may be null), Rope on q (in place) and k,
// and KvWriteBatch of the rotated k and of v: one launch per layer. k and v
// are left as they were (the cache holds the results).
absl::Status QkvRopeKvWrite(float* q, const float* k, const float* v, const float* bq,
                            const float* bk, const float* bv, const int32_t* positions,
                            int64_t tokens, int n_head, const RopeParams& rope, const KvLayer& kv,
                            const int32_t* block_tables, const int32_t* table_offsets,
                            cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i] for i in [0, n).
absl::Status SwiGlu(const float* gate, const float* up, int64_t n, float* out,
                    cudaStream_t stream);

// In-place numerically stable softmax over x[0..n) (one row).
absl::Status Softmax(float* x, int64_t n, cudaStream_t stream);

// y[i] += x[i].
absl::Status Add(const float* x, int64_t n, float* y, cudaStream_t stream);

// y[i] = parts[0][i] + parts[1][i] + ... + parts[count-1][i], added in that
// order (parts[p] starts at parts + p * n): a rank-order all-reduce from
// gathered partial sums, as the CPU group adds them. y must not overlap
// parts.
absl::Status SumParts(const float* parts, int count, int64_t n, float* y, cudaStream_t stream);

// x[t][i] += bias[i] for t in [0, tokens), i in [0, dim), in one launch: the
// Q/K/V biases (the CPU engine adds them row by row with Add). x and bias
// must not overlap.
absl::Status AddBias(const float* bias, int64_t tokens, int64_t dim, float* x,
                     cudaStream_t stream);

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_CUDA_KERNELS_H_
