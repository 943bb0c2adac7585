// Skinny matrix products for decode-sized steps: y = W x for up to
// kGemvMaxTokens tokens, reading float32 activations and 16- or 32-bit
// weights widened exactly, or Q8_0 / Q4_K weights decoded in the kernel to
// exactly the CPU's DequantizeRow values (quant_blocks.cuh), with no
// rounding of the activations. (The CPU's block kernels quantise the
// activations to int8 instead; this path multiplies the same weights by the
// unrounded activations, so it differs from the CPU by that rounding.)
//
// CPU reference (kernels/cpu/matmul_scalar.cc, plain float formats):
//   for t, o: y[t][o] = sum_i widen(W[o][i]) * x[t][i]   (float32)
// Here one warp computes one output row o for every token: lane l takes the
// columns [8 l + 256 j, 8 l + 256 j + 8) for j = 0, 1, ..., accumulating
// acc[t] = fma(w, x, acc[t]) over them in column order, and the lanes' sums
// are added by a fixed butterfly. Each (o, t) is therefore summed in the
// same order whatever the token count, so a token's row does not depend on
// the batch (up to kGemvMaxTokens), and never on how the rows are split
// among blocks. One launch covers up to kGemvMaxMatrices matrices that read
// the same input (Q/K/V, gate/up): their rows are numbered one after the
// other and a warp finds its matrix by row.
//
// Bound: memory. A warp reads its row once in 16-byte loads (8 weights for
// 16-bit types, two float4 for F32), four in flight per lane; the
// activations (at most 8 rows of k floats) come from L1/L2.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_format.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/quant_blocks.cuh"
#include "kernels/cuda/reduce.cuh"

namespace tessera::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kPerLane = 8;                      // columns per lane per pass
constexpr int kPerPass = kPerLane * kWarpSize;   // 256 columns per warp pass

struct GemvMatrixArgs {
  const void* w = nullptr;
  int64_t row_bytes = 0;
  int64_t rows = 0;
  float* y = nullptr;
};

struct GemvArgs {
  GemvMatrixArgs m[kGemvMaxMatrices];
  int64_t first_row[kGemvMaxMatrices + 1] = {};  // prefix sums of rows
  int count = 0;
  const float* x = nullptr;
  int64_t k = 0;
};

__device__ __forceinline__ float Widen(float v) { return v; }
__device__ __forceinline__ float Widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// Loads 8 consecutive weights at w[i..i+8) widened; `vec` when the address
// is 16-byte aligned (16-bit types) or 32-byte aligned (F32).
template <typename W, bool kVec>
__device__ __forceinline__ void Load8(const W* w, float out[kPerLane]) {
  if constexpr (kVec && sizeof(W) == 2) {
    const uint4 raw = *reinterpret_cast<const uint4*>(w);
    const W* h = reinterpret_cast<const W*>(&raw);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) out[j] = Widen(h[j]);
  } else if constexpr (kVec) {
    const float4 a = *reinterpret_cast<const float4*>(w);
    const float4 b = *reinterpret_cast<const float4*>(w + 4);
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) out[j] = Widen(w[j]);
  }
}

// A float format as a decoder (the interface of quant_blocks.cuh).
template <typename W, bool kVec>
struct FloatDecoder {
  static __device__ __forceinline__ void Decode8(const uint8_t* row, int64_t i, float out[8]) {
    Load8<W, kVec>(reinterpret_cast<const W*>(row) + i, out);
  }
  static __device__ __forceinline__ float Decode1(const uint8_t* row, int64_t c) {
    return Widen(reinterpret_cast<const W*>(row)[c]);
  }
};

template <typename Decoder, int N>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarpSize) GemvKernel(GemvArgs a) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (row >= a.first_row[a.count]) return;
  const int lane = threadIdx.x % kWarpSize;
  int j = 0;
  while (row >= a.first_row[j + 1]) ++j;
  const GemvMatrixArgs& m = a.m[j];
  const int64_t o = row - a.first_row[j];
  const uint8_t* wrow = static_cast<const uint8_t*>(m.w) + o * m.row_bytes;
  const int64_t k = a.k;

  float acc[N];
#pragma unroll
  for (int t = 0; t < N; ++t) acc[t] = 0.0f;
  // Full passes of 8 columns per lane, then the tail column by column; both
  // add the lane's columns in increasing order.
  const int64_t full = k / kPerPass * kPerPass;
#pragma unroll 4
  for (int64_t i = lane * kPerLane; i < full; i += kPerPass) {
    float w[kPerLane];
    Decoder::Decode8(wrow, i, w);
#pragma unroll
    for (int t = 0; t < N; ++t) {
      const float* xt = a.x + t * k + i;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) acc[t] = fmaf(w[c], xt[c], acc[t]);
    }
  }
  for (int64_t i = full + lane * kPerLane; i < k; i += kPerPass) {
    const int64_t end = i + kPerLane < k ? i + kPerLane : k;
    for (int64_t c = i; c < end; ++c) {
      const float w = Decoder::Decode1(wrow, c);
#pragma unroll
      for (int t = 0; t < N; ++t) acc[t] = fmaf(w, a.x[t * k + c], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < N; ++t) {
    const float sum = WarpSum(acc[t]);
    if (lane == 0) m.y[t * m.rows + o] = sum;
  }
}

template <typename Decoder, int N>
void LaunchN(const GemvArgs& a, cudaStream_t stream) {
  const int64_t rows = a.first_row[a.count];
  const unsigned blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  GemvKernel<Decoder, N><<<blocks, kWarpsPerBlock * kWarpSize, 0, stream>>>(a);
}

template <typename Decoder>
void Launch(const GemvArgs& a, int64_t tokens, cudaStream_t stream) {
  switch (tokens) {
    case 1: return LaunchN<Decoder, 1>(a, stream);
    case 2: return LaunchN<Decoder, 2>(a, stream);
    case 3: return LaunchN<Decoder, 3>(a, stream);
    case 4: return LaunchN<Decoder, 4>(a, stream);
    case 5: return LaunchN<Decoder, 5>(a, stream);
    case 6: return LaunchN<Decoder, 6>(a, stream);
    case 7: return LaunchN<Decoder, 7>(a, stream);
    default: return LaunchN<Decoder, 8>(a, stream);
  }
}

template <typename W>
void LaunchFloat(const GemvArgs& a, int64_t tokens, bool vec, cudaStream_t stream) {
  if (vec) return Launch<FloatDecoder<W, true>>(a, tokens, stream);
  Launch<FloatDecoder<W, false>>(a, tokens, stream);
}

bool Aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

}  // namespace

absl::Status Gemv(const WeightMatrix* ws, size_t count, const float* x, int64_t tokens,
                  float* const* ys, cudaStream_t stream) {
  if (count == 0 || tokens <= 0) return absl::OkStatus();
  if (count > static_cast<size_t>(kGemvMaxMatrices) || tokens > kGemvMaxTokens) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CUDA Gemv: %d matrices of %d tokens (at most %d and %d)", count, tokens,
        kGemvMaxMatrices, kGemvMaxTokens));
  }
  const DType type = ws[0].dtype;
  const bool quantised = type == DType::kQ8_0 || type == DType::kQ4_K;
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16 && !quantised) {
    return absl::UnimplementedError(absl::StrFormat(
        "CUDA Gemv: weights of type %s are not supported (F32, F16, BF16, Q8_0, Q4_K)",
        DTypeName(type)));
  }
  // Block formats: the row's bytes are whole blocks, no element alignment.
  const size_t elem = quantised ? 1 : type == DType::kF32 ? 4 : 2;
  const int64_t block = BlockSize(type);
  GemvArgs a;
  a.count = static_cast<int>(count);
  a.x = x;
  a.k = ws[0].cols;
  // Vector loads need every row start aligned to one load (16 bytes, or 32
  // for F32's pair of float4).
  const size_t load = elem * kPerLane;
  bool vec = true;
  for (size_t i = 0; i < count; ++i) {
    const WeightMatrix& w = ws[i];
    if (w.dtype != type || w.cols != a.k || w.cols % block != 0 || w.row_bytes % elem != 0 ||
        w.row_bytes < RowBytes(type, w.cols)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "CUDA Gemv: matrix %d (%s, %d columns, row_bytes %d) does not match matrix 0 (%s, %d "
          "columns)",
          i, DTypeName(w.dtype), w.cols, w.row_bytes, DTypeName(type), a.k));
    }
    a.m[i] = {w.data, static_cast<int64_t>(w.row_bytes), w.rows, ys[i]};
    a.first_row[i + 1] = a.first_row[i] + w.rows;
    vec &= Aligned(w.data, load) && w.row_bytes % load == 0;
  }
  if (a.first_row[count] == 0) return absl::OkStatus();
  switch (type) {
    case DType::kF32: LaunchFloat<float>(a, tokens, vec, stream); break;
    case DType::kF16: LaunchFloat<__half>(a, tokens, vec, stream); break;
    case DType::kQ8_0: Launch<Q8_0Decoder>(a, tokens, stream); break;
    case DType::kQ4_K: Launch<Q4_KDecoder>(a, tokens, stream); break;
    default: LaunchFloat<__nv_bfloat16>(a, tokens, vec, stream); break;
  }
  CUDA_RETURN_IF_LAUNCH_ERROR("GemvKernel");
  return absl::OkStatus();
}

}  // namespace tessera::kernels::cuda
