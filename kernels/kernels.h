// The op interface every backend implements.
//
// Tessera's engine calls only these functions. The CPU implementation lives in
// kernels/cpu/ (one file per op family, runtime ISA dispatch inside each); a
// CUDA implementation mirrors it in kernels/cuda/. kernels/ depends on nothing
// else of Tessera's.
//
// Numerics contract (what makes a request's tokens independent of batching):
// for a fixed ISA path, every output element of every op is computed by one
// thread with a reduction order fixed by the shapes of the *weights* alone.
// So the row of Y for token t is bitwise the same whatever `tokens` is, however
// the tokens are chunked, and whatever the thread count. Threads split outputs,
// never a reduction.
//
// Thread-safety: all functions are reentrant; `pool` may be shared but a
// ThreadPool runs one ParallelFor at a time (callers serialise).
#ifndef TESSERA_KERNELS_KERNELS_H_
#define TESSERA_KERNELS_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

namespace tessera::kernels {

// The CPU implementation's worker threads (kernels/cpu/thread_pool.h); the
// interface needs only the name.
class ThreadPool;

// A weight matrix in its storage format: `rows` output features, each a row of
// `cols` input features (GGUF ne0 = cols, ne1 = rows). For block formats, cols
// is a multiple of BlockSize(dtype). Rows are `row_bytes` apart.
struct WeightMatrix {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;  // normally RowBytes(dtype, cols)
};

// y[t*w.rows + o] = sum_i W[o][i] * x[t*w.cols + i] for t in [0, tokens).
// For block-quantised weights the activations are quantised per token to 8 bit
// in blocks of 32 (as llama.cpp does: Q8_0 against Q8_0/Q4_0, Q8_1 against
// Q4_1), or of 256 for the K-quants (Q8_K against Q4_K/Q5_K/Q6_K), and the
// (super-)block dot products are exact integer sums. Every format has AVX2
// and AVX-512 kernels (on AVX-512, 16-token tiles for prefill and batches);
// the super-block formats give the same bits on every ISA, the others one
// order per ISA (docs/numerics.md). `x` and `y` must not alias.
void MatMul(const WeightMatrix& w, const float* x, int64_t tokens, float* y,
            ThreadPool* pool);

// ys[i] = MatMul(ws[i], x, tokens) for i in [0, count), bitwise, but as one
// dispatch over the rows of all matrices, with the activations quantised once:
// saves the pool hand-offs and cold starts of separate calls when several
// matrices read the same input (Q/K/V, gate/up). Sharing needs equal dtype and
// cols and at most 8 matrices; otherwise it makes separate MatMul calls. No
// ys[i] may alias x.
void MatMulShared(const WeightMatrix* ws, size_t count, const float* x, int64_t tokens,
                  float* const* ys, ThreadPool* pool);

// Dequantises row `row` of `w` into out[0..w.cols).
void DequantizeRow(const WeightMatrix& w, int64_t row, float* out);

// y = x / sqrt(mean(x^2) + eps) * weight, per token. x may equal y.
void RmsNorm(const float* x, const float* weight, int64_t tokens, int64_t dim,
             float eps, float* y);

// Rotary embedding in place on x[tokens][heads][head_dim], rotating the first
// `rot_dim` dims of each head. Pair i is the adjacent dims (2i, 2i+1) (GGUF
// Llama and GLM-4 layout, llama.cpp's "normal" mode), or with `neox` the dims
// (i, i + rot_dim/2) (Qwen2 and Hugging Face's rotate-half layout, llama.cpp's
// "neox" mode). The angle for pair i at position p is p * theta_i where
// theta_i = freq_base^(-2i/rot_dim) / freq_factors[i] (freq_factors may be
// null = all 1; Llama-3 scaling supplies them).
struct RopeParams {
  int head_dim = 0;
  int rot_dim = 0;
  float freq_base = 10000.0f;
  const float* freq_factors = nullptr;  // rot_dim/2 entries or null
  bool neox = false;
};
void Rope(float* x, const int32_t* positions, int64_t tokens, int heads,
          const RopeParams& params);

// Paged KV cache of one layer: `num_blocks` blocks of `block_size` positions,
// each position holding n_kv_head * head_dim values for K and the same for V,
// stored as float32 or as IEEE half (`dtype`). Half storage halves the cache;
// values are rounded to nearest even on write and widened exactly on read, so
// attention over a half cache equals float32 attention over the rounded K/V.
// Element (block b, slot s, head h, dim d) of K is
//   k[((b * block_size + s) * n_kv_head + h) * head_dim + d].
struct KvLayer {
  // float* when dtype is kF32, uint16_t* (IEEE half) when dtype is kF16.
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::kF32;
  int64_t num_blocks = 0;
  int block_size = 16;
  int n_kv_head = 0;
  int head_dim = 0;
};

// Writes k_new/v_new[tokens][n_kv_head][head_dim] at the given positions of a
// sequence whose logical position p lives in block block_table[p / block_size]
// at slot p % block_size, rounding to half when the cache is kF16.
void KvWrite(const KvLayer& kv, const int32_t* block_table, const int32_t* positions,
             int64_t tokens, const float* k_new, const float* v_new);

// Causal attention for one sequence: q[tokens][n_head][head_dim] at
// positions[t] attends to that sequence's cached positions 0..positions[t]
// (inclusive; they must already be written). Query head h uses KV head
// h / (n_head / n_kv_head). out has q's shape. Scores are scaled by `scale`.
// Per (token, head) the keys are visited in increasing position order with a
// fixed reduction order, so the result does not depend on `tokens`.
void Attention(const float* q, const int32_t* positions, int64_t tokens, int n_head,
               const KvLayer& kv, const int32_t* block_table, float scale, float* out,
               ThreadPool* pool);

// out[i] = silu(gate[i]) * up[i] for i in [0, n).
void SwiGlu(const float* gate, const float* up, int64_t n, float* out);

// In-place numerically stable softmax over x[0..n).
void Softmax(float* x, int64_t n);

// y[i] += x[i].
void Add(const float* x, int64_t n, float* y);

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_KERNELS_H_
