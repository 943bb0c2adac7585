// Fused element-wise stages of a transformer layer, so that a decode step
// costs about ten launches per layer instead of twenty. Each does exactly the
// float operations of the unfused ops it replaces, in the same order per
// element, so its results are bitwise theirs.
//
//   AddRmsNorm:      x += delta; y = RmsNorm(x, w)       (Add, then RmsNorm)
//   QkvRopeKvWrite:  q += bq, k += bk, v += bv (when given); RoPE on q and k;
//                    k and v written to the paged cache  (AddBias x3, Rope x2,
//                                                          KvWriteBatch)
//
// CPU references: kernels/cpu/vec_ops.cc (Add), kernels/cpu/norm.cc
// (RmsNorm: squares summed in double, exact in any order), engine/
// model_runner.cc (biases added before RoPE), kernels/cpu/rope.cc,
// kernels/cpu/attention.cc (KvWrite).
#include <cuda_fp16.h>

#include <cmath>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

// One block per token.
__global__ void AddRmsNormKernel(const float* __restrict__ delta, float* __restrict__ x,
                                 const float* __restrict__ weight, int64_t dim, float eps,
                                 float* __restrict__ y) {
  __shared__ double scratch[kWarpSize];
  const float* dt = delta + blockIdx.x * dim;
  float* xt = x + blockIdx.x * dim;
  float* yt = y + blockIdx.x * dim;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = xt[i] + dt[i];
    xt[i] = v;
    const float sq = v * v;
    sum += static_cast<double>(sq);
  }
  sum = BlockSum(sum, scratch);
  const float mean = static_cast<float>(sum / static_cast<double>(dim));
  const float scale = 1.0f / sqrtf(mean + eps);
  // Each element is re-read by the thread that wrote it.
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yt[i] = (xt[i] * scale) * weight[i];
}

__device__ __forceinline__ void StoreKv(float* p, float v) { *p = v; }
__device__ __forceinline__ void StoreKv(__half* p, float v) { *p = __float2half_rn(v); }

__device__ __forceinline__ float Biased(const float* x, const float* bias, int64_t i) {
  return bias != nullptr ? x[i] + bias[i] : x[i];
}

// One block per token: the pairs' cos/sin once, then every element of q, k
// and v of the token: biased, rotated where it belongs to a rotated pair, and
// (k, v) stored in the cache.
template <typename T>
__global__ void QkvRopeKvWriteKernel(float* __restrict__ q, const float* __restrict__ k,
                                     const float* __restrict__ v, const float* __restrict__ bq,
                                     const float* __restrict__ bk, const float* __restrict__ bv,
                                     const int32_t* __restrict__ positions, int n_head,
                                     int n_kv_head, int head_dim, int pairs, float theta_scale,
                                     const float* __restrict__ freq_factors, bool neox,
                                     T* __restrict__ k_cache, T* __restrict__ v_cache,
                                     int block_size, const int32_t* __restrict__ block_tables,
                                     const int32_t* __restrict__ table_offsets) {
  extern __shared__ float cos_sin[];  // [pairs][2]
  const int64_t t = blockIdx.x;
  const int32_t pos = positions[t];
  RopeCosSin(pos, pairs, theta_scale, freq_factors, cos_sin);
  __syncthreads();
  const int stride = neox ? pairs : 1;
  const int rot = 2 * pairs;
  const int64_t q_dim = static_cast<int64_t>(n_head) * head_dim;
  const int64_t kv_dim = static_cast<int64_t>(n_kv_head) * head_dim;
  const int32_t* table = block_tables + (table_offsets != nullptr ? table_offsets[t] : 0);
  const int64_t cache_row =
      (static_cast<int64_t>(table[pos / block_size]) * block_size + pos % block_size) * kv_dim;
  float* qt = q + t * q_dim;
  const float* kt = k + t * kv_dim;
  const float* vt = v + t * kv_dim;
  // Work items: every rotated pair of a q or k head, every unrotated element
  // of a q or k head, every v element.
  const int per_head = pairs + (head_dim - rot);
  const int64_t q_items = static_cast<int64_t>(n_head) * per_head;
  const int64_t k_items = static_cast<int64_t>(n_kv_head) * per_head;
  for (int64_t idx = threadIdx.x; idx < q_items + k_items + kv_dim; idx += blockDim.x) {
    if (idx >= q_items + k_items) {
      const int64_t e = idx - q_items - k_items;
      StoreKv(v_cache + cache_row + e, Biased(vt, bv, e));
      continue;
    }
    const bool is_q = idx < q_items;
    const int64_t local = is_q ? idx : idx - q_items;
    const int head = static_cast<int>(local / per_head);
    const int item = static_cast<int>(local % per_head);
    const float* src = is_q ? qt : kt;
    const float* bias = is_q ? bq : bk;
    const int64_t base = static_cast<int64_t>(head) * head_dim;
    if (item < pairs) {
      const int a = neox ? item : 2 * item;
      const float x0 = Biased(src, bias, base + a);
      const float x1 = Biased(src, bias, base + a + stride);
      const float c = cos_sin[2 * item];
      const float s = cos_sin[2 * item + 1];
      const float y0 = x0 * c - x1 * s;
      const float y1 = x0 * s + x1 * c;
      if (is_q) {
        qt[base + a] = y0;
        qt[base + a + stride] = y1;
      } else {
        StoreKv(k_cache + cache_row + base + a, y0);
        StoreKv(k_cache + cache_row + base + a + stride, y1);
      }
    } else {
      const int64_t e = base + rot + (item - pairs);  // past the rotated dims
      const float y = Biased(src, bias, e);
      if (is_q) {
        qt[e] = y;
      } else {
        StoreKv(k_cache + cache_row + e, y);
      }
    }
  }
}

}  // namespace

absl::Status AddRmsNorm(const float* delta, float* x, const float* weight, int64_t tokens,
                        int64_t dim, float eps, float* y, cudaStream_t stream) {
  if (tokens <= 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  AddRmsNormKernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(delta, x, weight, dim,
                                                                          eps, y);
  CUDA_RETURN_IF_LAUNCH_ERROR("AddRmsNormKernel");
  return absl::OkStatus();
}

absl::Status QkvRopeKvWrite(float* q, const float* k, const float* v, const float* bq,
                            const float* bk, const float* bv, const int32_t* positions,
                            int64_t tokens, int n_head, const RopeParams& rope, const KvLayer& kv,
                            const int32_t* block_tables, const int32_t* table_offsets,
                            cudaStream_t stream) {
  if (tokens <= 0) return absl::OkStatus();
  if (kv.dtype != DType::kF32 && kv.dtype != DType::kF16) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA QkvRopeKvWrite: KV cache of type %s (F32 and F16 only)", DTypeName(kv.dtype)));
  }
  if (rope.rot_dim > rope.head_dim || rope.rot_dim % 2 != 0 || rope.head_dim != kv.head_dim ||
      kv.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA QkvRopeKvWrite: rot_dim %d, head_dim %d (cache %d), block_size %d", rope.rot_dim,
        rope.head_dim, kv.head_dim, kv.block_size));
  }
  const int pairs = rope.rot_dim / 2;
  const float theta_scale =
      pairs > 0 ? std::pow(rope.freq_base, -2.0f / static_cast<float>(rope.rot_dim)) : 1.0f;
  constexpr int kThreads = 256;
  const size_t smem = sizeof(float) * 2 * static_cast<size_t>(pairs > 0 ? pairs : 1);
  const unsigned grid = static_cast<unsigned>(tokens);
  if (kv.dtype == DType::kF16) {
    QkvRopeKvWriteKernel<__half><<<grid, kThreads, smem, stream>>>(
        q, k, v, bq, bk, bv, positions, n_head, kv.n_kv_head, rope.head_dim, pairs, theta_scale,
        rope.freq_factors, rope.neox, static_cast<__half*>(kv.k), static_cast<__half*>(kv.v),
        kv.block_size, block_tables, table_offsets);
  } else {
    QkvRopeKvWriteKernel<float><<<grid, kThreads, smem, stream>>>(
        q, k, v, bq, bk, bv, positions, n_head, kv.n_kv_head, rope.head_dim, pairs, theta_scale,
        rope.freq_factors, rope.neox, static_cast<float*>(kv.k), static_cast<float*>(kv.v),
        kv.block_size, block_tables, table_offsets);
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("QkvRopeKvWriteKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
