// Paged-KV writes and causal attention, decode and prefill alike.
//
// CPU reference (kernels/cpu/attention.cc), per (token t, query head h) with
// n = positions[t] + 1 and KV head g = h / (n_head / n_kv_head):
//   s_p = dot(q, k_p) * scale            for p in [0, n), in order
//   m = max s_p; e_p = exp(s_p - m); sum = sum_p double(e_p)
//   out = sum_p (e_p * float(1 / sum)) * v_p
// Here one block of kWarps warps computes one (t, h): warp w takes positions
// w, w + kWarps, ... with an online softmax (running max m, running sum l,
// rescaled accumulator), lanes split head_dim, and the warps' partial
// results are merged at the end. Each K/V row is read once per (t, h); the
// other query heads of the group read it from L2. The block's steps depend
// only on (t, h)'s own inputs, so a token's result does not depend on the
// batch. A half cache is widened exactly on load.
//
// Decode (split-K, "flash decoding"): with one query per sequence, one block
// per head leaves most of the GPU idle and walks the context serially. So
// AttentionDecodeBatch splits each token's positions into
// S = min(kMaxSplits, ceil(n / kSplitPositions)) contiguous chunks, one
// block each (the same online softmax over its chunk), and a second kernel
// merges the S partial results in chunk order with the same formula the
// in-block merge uses. S depends only on the token's own n, so a token's
// result does not depend on the batch either.
#include <cuda_fp16.h>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarpSize;

__device__ __forceinline__ float Load(const float* p) { return *p; }
__device__ __forceinline__ float Load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void StoreKv(float* p, float v) { *p = v; }
__device__ __forceinline__ void StoreKv(__half* p, float v) { *p = __float2half_rn(v); }

// Element offset of (position, KV head)'s row in a layer's K or V.
__device__ __forceinline__ int64_t RowOffset(const int32_t* table, int32_t pos, int block_size,
                                             int n_kv_head, int kv_head, int head_dim) {
  const int64_t block = table[pos / block_size];
  return ((block * block_size + pos % block_size) * n_kv_head + kv_head) * head_dim;
}

// One block per token; threads over the token's n_kv_head * head_dim values.
template <typename T>
__global__ void KvWriteKernel(T* k, T* v, int block_size, int width,
                              const int32_t* __restrict__ block_tables,
                              const int32_t* __restrict__ table_offsets,
                              const int32_t* __restrict__ positions,
                              const float* __restrict__ k_new, const float* __restrict__ v_new) {
  const int64_t t = blockIdx.x;
  const int32_t* table = block_tables + (table_offsets != nullptr ? table_offsets[t] : 0);
  const int32_t pos = positions[t];
  const int64_t base =
      (static_cast<int64_t>(table[pos / block_size]) * block_size + pos % block_size) * width;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    StoreKv(k + base + i, k_new[t * width + i]);
    StoreKv(v + base + i, v_new[t * width + i]);
  }
}

// The online softmax of query qt over positions [begin, end) by one block of
// kWarps warps (warp w takes begin + w, begin + w + kWarps, ...), the warps'
// partial results merged in warp order. Each thread writes its share of the
// head_dim outputs, out[d] = sum / total when `normalize`, else the
// unnormalised sum; returns (every thread) the merged running max and total.
template <typename T>
__device__ __forceinline__ float2 BlockAttend(const float* __restrict__ qt,
                                              const T* __restrict__ k, const T* __restrict__ v,
                                              const int32_t* __restrict__ table, int32_t begin,
                                              int32_t end, int block_size, int n_kv_head,
                                              int kv_head, int head_dim, float scale,
                                              bool normalize, float* __restrict__ out) {
  __shared__ float part_m[kWarps];
  __shared__ float part_l[kWarps];
  __shared__ float part_acc[kWarps][kMaxHeadDim];
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  float qv[kPerLane];
  float acc[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int d = lane + j * kWarpSize;
    qv[j] = d < head_dim ? qt[d] : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY;
  float l = 0.0f;
  for (int32_t p = begin + warp; p < end; p += kWarps) {
    const int64_t off = RowOffset(table, p, block_size, n_kv_head, kv_head, head_dim);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int d = lane + j * kWarpSize;
      if (d < head_dim) s += qv[j] * Load(k + off + d);
    }
    s = WarpSum(s) * scale;
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new);  // 0 on the first position
    const float e = expf(s - m_new);
    l = l * correction + e;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int d = lane + j * kWarpSize;
      if (d < head_dim) acc[j] = acc[j] * correction + e * Load(v + off + d);
    }
    m = m_new;
  }
  if (lane == 0) {
    part_m[warp] = m;
    part_l[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int d = lane + j * kWarpSize;
    if (d < head_dim) part_acc[warp][d] = acc[j];
  }
  __syncthreads();
  // Merge: a warp that saw no position has m = -inf and weight 0.
  float big_m = -INFINITY;
  for (int w = 0; w < kWarps; ++w) big_m = fmaxf(big_m, part_m[w]);
  float weight[kWarps];
  float total = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    weight[w] = part_m[w] == -INFINITY ? 0.0f : expf(part_m[w] - big_m);
    total += part_l[w] * weight[w];
  }
  const float inv = 1.0f / total;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += part_acc[w][d] * weight[w];
    out[d] = normalize ? sum * inv : sum;
  }
  return make_float2(big_m, total);
}

// grid (n_head, tokens), kWarps * 32 threads: every position of (t, h).
template <typename T>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    AttentionKernel(const float* __restrict__ q, const int32_t* __restrict__ positions,
                    int n_head, const T* __restrict__ k, const T* __restrict__ v,
                    int block_size, int n_kv_head, int head_dim,
                    const int32_t* __restrict__ block_tables,
                    const int32_t* __restrict__ table_offsets, float scale,
                    float* __restrict__ out) {
  const int h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int32_t* table = block_tables + (table_offsets != nullptr ? table_offsets[t] : 0);
  BlockAttend(q + (t * n_head + h) * head_dim, k, v, table, 0, positions[t] + 1, block_size,
              n_kv_head, h / (n_head / n_kv_head), head_dim, scale, /*normalize=*/true,
              out + (t * n_head + h) * head_dim);
}

constexpr int kMaxSplits = 16;
constexpr int kSplitPositions = 64;
constexpr int kPartialStride = kMaxHeadDim + 2;  // m, l, acc[head_dim]

__device__ __forceinline__ int SplitsFor(int32_t n) {
  const int s = (n + kSplitPositions - 1) / kSplitPositions;
  return s < kMaxSplits ? (s > 0 ? s : 1) : kMaxSplits;
}

// grid (n_head, tokens, kMaxSplits), kWarps * 32 threads. Block (h, t, s)
// runs the online softmax over chunk s of t's positions and writes its
// (m, l, acc[head_dim]) to partial[(t * n_head + h) * kMaxSplits + s].
template <typename T>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    AttentionSplitKernel(const float* __restrict__ q, const int32_t* __restrict__ positions,
                         int n_head, const T* __restrict__ k, const T* __restrict__ v,
                         int block_size, int n_kv_head, int head_dim,
                         const int32_t* __restrict__ block_tables,
                         const int32_t* __restrict__ table_offsets, float scale,
                         float* __restrict__ partial) {
  const int h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int split = blockIdx.z;
  const int32_t n = positions[t] + 1;
  const int splits = SplitsFor(n);
  if (split >= splits) return;  // the whole block: no barrier is left waiting
  const int32_t chunk = (n + splits - 1) / splits;
  const int32_t begin = split * chunk;
  const int32_t end = begin + chunk < n ? begin + chunk : n;
  const int32_t* table = block_tables + (table_offsets != nullptr ? table_offsets[t] : 0);
  float* out = partial + ((t * n_head + h) * kMaxSplits + split) * kPartialStride;
  const float2 ml = BlockAttend(q + (t * n_head + h) * head_dim, k, v, table, begin, end,
                                block_size, n_kv_head, h / (n_head / n_kv_head), head_dim, scale,
                                /*normalize=*/false, out + 2);
  if (threadIdx.x == 0) {
    out[0] = ml.x;
    out[1] = ml.y;
  }
}

// grid (n_head, tokens), kWarps * 32 threads: merges t's chunks in order,
// with the formula of BlockAttend's merge of warps.
__global__ void AttentionMergeKernel(const float* __restrict__ partial,
                                     const int32_t* __restrict__ positions, int n_head,
                                     int head_dim, float* __restrict__ out) {
  const int h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int splits = SplitsFor(positions[t] + 1);
  const float* p = partial + (t * n_head + h) * kMaxSplits * kPartialStride;
  float big_m = -INFINITY;
  for (int s = 0; s < splits; ++s) big_m = fmaxf(big_m, p[s * kPartialStride]);
  float weight[kMaxSplits];
  float total = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float m = p[s * kPartialStride];
    weight[s] = m == -INFINITY ? 0.0f : expf(m - big_m);
    total += p[s * kPartialStride + 1] * weight[s];
  }
  const float inv = 1.0f / total;
  float* ot = out + (t * n_head + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += p[s * kPartialStride + 2 + d] * weight[s];
    ot[d] = sum * inv;
  }
}

absl::Status CheckLayer(const KvLayer& kv, const char* op) {
  if (kv.dtype != DType::kF32 && kv.dtype != DType::kF16) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA %s: KV cache of type %s (F32 and F16 only)", op, DTypeName(kv.dtype)));
  }
  if (kv.head_dim <= 0 || kv.head_dim > kMaxHeadDim || kv.n_kv_head <= 0 ||
      kv.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA %s: head_dim %d (at most %d), n_kv_head %d, block_size %d", op, kv.head_dim,
        kMaxHeadDim, kv.n_kv_head, kv.block_size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status KvWriteBatch(const KvLayer& kv, const int32_t* block_tables,
                          const int32_t* table_offsets, const int32_t* positions,
                          int64_t tokens, const float* k_new, const float* v_new,
                          cudaStream_t stream) {
  if (tokens <= 0) return absl::OkStatus();
  if (absl::Status s = CheckLayer(kv, "KvWrite"); !s.ok()) return s;
  const int width = kv.n_kv_head * kv.head_dim;
  constexpr int kThreads = 256;
  if (kv.dtype == DType::kF16) {
    KvWriteKernel<__half><<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        static_cast<__half*>(kv.k), static_cast<__half*>(kv.v), kv.block_size, width,
        block_tables, table_offsets, positions, k_new, v_new);
  } else {
    KvWriteKernel<float><<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        static_cast<float*>(kv.k), static_cast<float*>(kv.v), kv.block_size, width,
        block_tables, table_offsets, positions, k_new, v_new);
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("KvWriteKernel");
  return absl::OkStatus();
}

absl::Status AttentionBatch(const float* q, const int32_t* positions, int64_t tokens,
                            int n_head, const KvLayer& kv, const int32_t* block_tables,
                            const int32_t* table_offsets, float scale, float* out,
                            cudaStream_t stream) {
  if (tokens <= 0 || n_head <= 0) return absl::OkStatus();
  if (absl::Status s = CheckLayer(kv, "Attention"); !s.ok()) return s;
  if (n_head % kv.n_kv_head != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA Attention: %d query heads are not a multiple of %d KV heads", n_head,
        kv.n_kv_head));
  }
  if (tokens > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CUDA Attention: %d tokens in one call (at most 65535)", tokens));
  }
  const dim3 grid(static_cast<unsigned>(n_head), static_cast<unsigned>(tokens));
  if (kv.dtype == DType::kF16) {
    AttentionKernel<__half><<<grid, kWarps * kWarpSize, 0, stream>>>(
        q, positions, n_head, static_cast<const __half*>(kv.k),
        static_cast<const __half*>(kv.v), kv.block_size, kv.n_kv_head, kv.head_dim,
        block_tables, table_offsets, scale, out);
  } else {
    AttentionKernel<float><<<grid, kWarps * kWarpSize, 0, stream>>>(
        q, positions, n_head, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v),
        kv.block_size, kv.n_kv_head, kv.head_dim, block_tables, table_offsets, scale, out);
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("AttentionKernel");
  return absl::OkStatus();
}

size_t AttentionDecodeScratchBytes(int64_t tokens, int n_head) {
  return static_cast<size_t>(tokens) * n_head * kMaxSplits * kPartialStride * sizeof(float);
}

absl::Status AttentionDecodeBatch(const float* q, const int32_t* positions, int64_t tokens,
                                  int n_head, const KvLayer& kv, const int32_t* block_tables,
                                  const int32_t* table_offsets, float scale, float* scratch,
                                  float* out, cudaStream_t stream) {
  if (tokens <= 0 || n_head <= 0) return absl::OkStatus();
  if (absl::Status s = CheckLayer(kv, "AttentionDecode"); !s.ok()) return s;
  if (n_head % kv.n_kv_head != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA AttentionDecode: %d query heads are not a multiple of %d KV heads", n_head,
        kv.n_kv_head));
  }
  if (tokens > kAttentionDecodeMaxTokens) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA AttentionDecode: %d tokens in one call (at most %d)", tokens,
        kAttentionDecodeMaxTokens));
  }
  const dim3 split_grid(static_cast<unsigned>(n_head), static_cast<unsigned>(tokens), kMaxSplits);
  if (kv.dtype == DType::kF16) {
    AttentionSplitKernel<__half><<<split_grid, kWarps * kWarpSize, 0, stream>>>(
        q, positions, n_head, static_cast<const __half*>(kv.k),
        static_cast<const __half*>(kv.v), kv.block_size, kv.n_kv_head, kv.head_dim,
        block_tables, table_offsets, scale, scratch);
  } else {
    AttentionSplitKernel<float><<<split_grid, kWarps * kWarpSize, 0, stream>>>(
        q, positions, n_head, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v),
        kv.block_size, kv.n_kv_head, kv.head_dim, block_tables, table_offsets, scale, scratch);
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("AttentionSplitKernel");
  const dim3 merge_grid(static_cast<unsigned>(n_head), static_cast<unsigned>(tokens));
  AttentionMergeKernel<<<merge_grid, kWarps * kWarpSize, 0, stream>>>(scratch, positions, n_head,
                                                                     kv.head_dim, out);
  CUDA_RETURN_IF_LAUNCH_ERROR("AttentionMergeKernel");
  return absl::OkStatus();
}

absl::Status KvWrite(const KvLayer& kv, const int32_t* block_table, const int32_t* positions,
                     int64_t tokens, const float* k_new, const float* v_new,
                     cudaStream_t stream) {
  return KvWriteBatch(kv, block_table, nullptr, positions, tokens, k_new, v_new, stream);
}

absl::Status Attention(const float* q, const int32_t* positions, int64_t tokens, int n_head,
                       const KvLayer& kv, const int32_t* block_table, float scale, float* out,
                       cudaStream_t stream) {
  return AttentionBatch(q, positions, tokens, n_head, kv, block_table, nullptr, scale, out,
                        stream);
}

}  // namespace tessera::kernels::cuda
