// The CUDA implementation of the op interface of kernels/kernels.h.
//
// Same names and argument order as the CPU ops, in namespace
// tessera::kernels::cuda, with two differences: every pointer is a DEVICE
// pointer (WeightMatrix::data, RopeParams::freq_factors, KvLayer::k/v, block
// tables and positions included), and every op takes the stream it is
// enqueued on and returns a Status (launch errors are checked; execution is
// asynchronous, so a fault inside a kernel surfaces at the next synchronising
// call). One file per op family: matmul.cu, embedding.cu, norm.cu, rope.cu,
// attention.cu, activation.cu, sampling.cu. Each file opens with the CPU
// reference it mirrors.
//
// Numerics against the CPU oracle (what tests/cuda checks):
//   - MatMul: F32 weights run in float32 (no TF32). F16/BF16 weights: the
//     activations are rounded to the weight's 16-bit type first (tensor-core
//     inputs must share a type) and the products are accumulated in float32;
//     the CPU instead multiplies float32 activations by widened weights, so
//     results differ by about one 16-bit rounding of x (relative ~2^-9 per
//     element, much less for the whole dot product).
//   - RmsNorm, Rope, SwiGlu, Add, AddBias, KvWrite: per element the same float
//     operations in the same order (compiled with --fmad=false); only the
//     CUDA exp/sin/cos differ from glibc's by an ulp or two.
//   - Attention, Softmax: the same formulae, with a parallel reduction order
//     and an online (running max) softmax in Attention.
// Batch invariance: every op except MatMul computes each output row from that
// row's inputs alone with a fixed order, so rows do not depend on what else
// is in the batch. cuBLASLt may choose a different algorithm for a different
// token count, so MatMul rows can differ in the last bits between batch sizes.
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

// y[t*w.rows + o] = sum_i W[o][i] * x[t*w.cols + i] for t in [0, tokens).
// w.dtype must be F32, F16 or BF16 (UNIMPLEMENTED otherwise); w.row_bytes a
// multiple of the element size. x and y must not alias.
absl::Status MatMul(BlasLt& blas, const WeightMatrix& w, const float* x, int64_t tokens,
                    float* y, cudaStream_t stream);

// ys[i] = MatMul(ws[i], x, tokens) for i in [0, count), with the activations
// converted to the 16-bit type once when every matrix shares dtype and cols
// (Q/K/V, gate/up); otherwise separate MatMul calls. No ys[i] may alias x.
absl::Status MatMulShared(BlasLt& blas, const WeightMatrix* ws, size_t count, const float* x,
                          int64_t tokens, float* const* ys, cudaStream_t stream);

// out[i][0..w.cols) = row ids[i] of `w` widened to float32, for i in [0, n)
// (the token-embedding lookup; DequantizeRow for a batch of rows). `ids` is a
// device array; ids outside [0, w.rows) must have been rejected by the caller.
absl::Status DequantizeRows(const WeightMatrix& w, const int32_t* ids, int64_t n, float* out,
                            cudaStream_t stream);

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

// out[i] = silu(gate[i]) * up[i] for i in [0, n).
absl::Status SwiGlu(const float* gate, const float* up, int64_t n, float* out,
                    cudaStream_t stream);

// In-place numerically stable softmax over x[0..n) (one row).
absl::Status Softmax(float* x, int64_t n, cudaStream_t stream);

// y[i] += x[i].
absl::Status Add(const float* x, int64_t n, float* y, cudaStream_t stream);

// x[t][i] += bias[i] for t in [0, tokens), i in [0, dim), in one launch: the
// Q/K/V biases (the CPU engine adds them row by row with Add). x and bias
// must not overlap.
absl::Status AddBias(const float* bias, int64_t tokens, int64_t dim, float* x,
                     cudaStream_t stream);

}  // namespace tessera::kernels::cuda

#endif  // TESSERA_KERNELS_CUDA_CUDA_KERNELS_H_
