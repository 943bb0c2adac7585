// AVX-512 (F/BW/VL/DQ/VNNI) row kernels, compiled with the matching -m flags
// and called only when cpu/isa.cc found those features.
//
// Fixed per-(token,row) reduction orders:
//  - float formats: two 16-lane accumulators over 32-column steps, then one
//    16-column step into the first, then a masked tail into the second;
//    finally HSum(acc0 + acc1).
//  - the 32-value block formats: each block's exact int32 sum of its 32
//    products (VNNI; integer adds in any order), converted once and FMA'd
//    with d_w * d_x into one of 8 float chains (block b into ChainOf(b)),
//    then m_w * s_x into the same chain for Q4_1/Q5_1; a fixed tree over the
//    chains (see BlockKernel). llama.cpp also scales each block's integer
//    sum once. Q4_0's nibbles, Q5_0's 5-bit values and IQ4_NL's table values
//    are unpacked to signed bytes and take Q8_0's path; Q5_1 takes Q4_1's.
// Block-format calls with kTileMinTokens or more tokens run their first
// 16-token tiles through RunTiles, which reproduces these orders bitwise with
// tokens in the vector lanes; the remaining tokens use the row kernels.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/block_weights_avx2.h"
#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/row_groups.h"

namespace tessera::kernels::internal {
namespace {

float HSum(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType kType>
__m512 Load16(const uint8_t* row, int64_t i, __mmask16 m = 0xFFFF) {
  if constexpr (kType == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == DType::kF16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  } else {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
}

template <DType kType>
struct FloatKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t n = a.w->cols;
    const float* x[NT];
    __m512 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      x[k] = a.x + (t0 + k) * n;
      acc0[k] = _mm512_setzero_ps();
      acc1[k] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 w0 = Load16<kType>(row, i);
      const __m512 w1 = Load16<kType>(row, i + 16);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[k] + i), acc0[k]);
        acc1[k] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[k] + i + 16), acc1[k]);
      }
    }
    if (i + 16 <= n) {
      const __m512 w0 = Load16<kType>(row, i);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[k] + i), acc0[k]);
      }
      i += 16;
    }
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
      const __m512 w0 = Load16<kType>(row, i, m);
      for (int k = 0; k < NT; ++k) {
        acc1[k] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[k] + i), acc1[k]);
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm512_add_ps(acc0[k], acc1[k]));
    }
  }
};

#define TESSERA_INLINE inline __attribute__((always_inline))

TESSERA_INLINE uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The 32-value block formats. Per (token, row): block b's exact int32 sum
// I_b of its 32 products is converted to float once and FMA'd, scaled by
// d_w * d_x, into chain ChainOf(b) of 8 float chains, blocks in increasing
// order; the formats with a minimum then FMA m_w * s_x into the same chain.
// The result is the tree ((c0 + c4) + (c2 + c6)) + ((c1 + c5) + (c3 + c7)).
// ChainOf is the lane order BlockSums8 leaves 8 consecutive blocks in, so
// the row kernel needs no permutation of its sums.
TESSERA_INLINE int ChainOf(int64_t b) { return static_cast<int>(((b & 1) << 2) | ((b & 7) >> 1)); }

// Sums of each block's lanes: z[k] holds VNNI lane sums of blocks 2k (lanes
// 0-7) and 2k+1 (lanes 8-15). Returns (I_0, I_2, I_4, I_6, I_1, I_3, I_5,
// I_7), integer adds only, so exact in any order.
TESSERA_INLINE __m256i BlockSums8(__m512i z0, __m512i z1, __m512i z2, __m512i z3) {
  const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(z0, z1), _mm512_unpackhi_epi32(z0, z1));
  const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(z2, z3), _mm512_unpackhi_epi32(z2, z3));
  // 128-bit chunk j: the sums of chunk j of z0, z1, z2, z3.
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
  // Chunk 0 + chunk 1 is the even blocks, chunk 2 + chunk 3 the odd ones.
  const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 0, 2, 0)));
}

// ((c0 + c4) + (c2 + c6)) + ((c1 + c5) + (c3 + c7)).
TESSERA_INLINE float HSum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Row kernel: 8 blocks at a time. Signed formats (Q8_0, Q4_0, Q5_0, IQ4_NL)
// take |w| against x with w's sign moved onto x (|x| <= 127); kMin formats
// (Q4_1, Q5_1) take their unsigned weights against x directly.
template <typename Weights, bool kMin>
struct BlockKernel {
  static constexpr int64_t kBytes = Weights::kBlockBytes;

  // Blocks b0..b0+n-1 (n <= 8; kFull: n == 8, no tests) into acc[t].
  template <int NT, bool kFull>
  static TESSERA_INLINE void Group(const uint8_t* blk, int64_t b0, int n, const int8_t* const* q,
                                   const float* const* dx, const float* const* sx, __m256* acc) {
    const __m512i zero = _mm512_setzero_si512();
    const __m256i chain_order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __mmask8 present = 0xFF;  // chain lanes of the blocks that exist
    if constexpr (!kFull) {
      present = 0;
      for (int r = 0; r < n; ++r) present |= static_cast<__mmask8>(1u << ChainOf(r));
    }
    const __mmask8 natural = kFull ? __mmask8{0xFF} : static_cast<__mmask8>((1u << n) - 1);
    // d (and m, the f16 after it) of the blocks, in chain order.
    const __m256i offsets = _mm256_mullo_epi32(chain_order, _mm256_set1_epi32(kBytes));
    const __m256i dm = kFull ? _mm256_i32gather_epi32(reinterpret_cast<const int*>(blk), offsets, 1)
                             : _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), present, offsets, blk, 1);
    const __m256 dw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(dm));
    __m512i w[4];
    __mmask64 neg[4];
    for (int k = 0; k < 4; ++k) {
      if (!kFull && 2 * k >= n) {
        w[k] = zero;
        neg[k] = 0;
        continue;
      }
      const __m256i lo = Weights::Load(blk + kBytes * 2 * k);
      const __m256i hi = kFull || 2 * k + 1 < n ? Weights::Load(blk + kBytes * (2 * k + 1))
                                                : _mm256_setzero_si256();
      w[k] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      if constexpr (!kMin) {
        neg[k] = _mm512_movepi8_mask(w[k]);
        w[k] = _mm512_abs_epi8(w[k]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      __m512i z[4];
      for (int k = 0; k < 4; ++k) {
        const int8_t* xp = q[t] + 32 * (b0 + 2 * k);
        if constexpr (kFull) {
          const __m512i x = _mm512_loadu_si512(xp);
          z[k] = kMin ? _mm512_dpbusd_epi32(zero, w[k], x)
                      : _mm512_dpbusd_epi32(zero, w[k], _mm512_mask_sub_epi8(x, neg[k], zero, x));
          continue;
        }
        if (2 * k >= n) {
          z[k] = zero;
          continue;
        }
        const __m512i x = 2 * k + 1 < n ? _mm512_loadu_si512(xp) : _mm512_maskz_loadu_epi8(0xFFFFFFFFull, xp);
        z[k] = kMin ? _mm512_dpbusd_epi32(zero, w[k], x)
                    : _mm512_dpbusd_epi32(zero, w[k], _mm512_mask_sub_epi8(x, neg[k], zero, x));
      }
      const __m256 f = _mm256_cvtepi32_ps(BlockSums8(z[0], z[1], z[2], z[3]));
      const __m256 dxv = _mm256_permutexvar_ps(chain_order, _mm256_maskz_loadu_ps(natural, dx[t] + b0));
      acc[t] = _mm256_mask3_fmadd_ps(_mm256_mul_ps(dw, dxv), f, acc[t], present);
      if constexpr (kMin) {
        const __m256 mw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(dm, 16)));
        const __m256 sxv = _mm256_permutexvar_ps(chain_order, _mm256_maskz_loadu_ps(natural, sx[t] + b0));
        acc[t] = _mm256_mask3_fmadd_ps(mw, sxv, acc[t], present);
      }
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    const float* sx[NT];
    __m256 acc[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      sx[k] = kMin ? a.qx.s + (t0 + k) * nb : nullptr;
      acc[k] = _mm256_setzero_ps();
    }
    int64_t b0 = 0;
    for (; b0 + 8 <= nb; b0 += 8) Group<NT, true>(row + kBytes * b0, b0, 8, q, dx, sx, acc);
    if (b0 < nb) Group<NT, false>(row + kBytes * b0, b0, static_cast<int>(nb - b0), q, dx, sx, acc);
    for (int t = 0; t < NT; ++t) a.y[(t0 + t) * a.w->rows + o] = HSum8(acc[t]);
  }
};

// Tile kernel (prefill and batched decode): 16 tokens in the 16 lanes of a
// vector, so each weight byte is unpacked once per row and each VNNI
// instruction does 16 tokens' work. Its 8 chains are 8 vectors over tokens,
// each fed the same FMAs on the same operands as the row kernel's lane, and
// the final tree is replayed lane-wise, so y[t][o] is bitwise what the row
// kernel gives, whichever path a token takes. Rows are taken kTileRows at a
// time: their weights are unpacked once (bytes; for the signed formats the
// block's VNNI offset correction -128 * sum(w), as the tiles hold x + 128;
// the float d and m), then every tile runs against all of them, so a tile's
// activations are read from L1 once per row chunk.
// A row chunk's unpacked weights (see RunTiles).
struct TileBuffers {
  const int32_t* wq;    // [row][block][8 groups]
  const int32_t* corr;  // [row][block]
  const float* dw;      // [row][block]
  const float* mw;
};

// kR rows (r, r+1, ...) of the chunk against one tile: the rows share each
// activation load.
template <typename Weights, bool kMin, int kR>
TESSERA_INLINE void TileRows(const MatMulArgs& a, const TileBuffers& bufs, int64_t nb, int64_t r,
                             const uint8_t* xq, const float* xd, const float* xs, int64_t t0, int64_t n,
                             int64_t o0) {
  __m512 acc[kR][8];
  for (int k = 0; k < kR; ++k) {
    for (int c = 0; c < 8; ++c) acc[k][c] = _mm512_setzero_ps();
  }
  for (int64_t b0 = 0; b0 < nb; b0 += 8) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const int64_t b = b0 + i;
      if (b >= nb) break;
      const uint8_t* xb = xq + b * 512;
      __m512i is[kR];
      for (int k = 0; k < kR; ++k) {
        is[k] = kMin ? _mm512_setzero_si512() : _mm512_set1_epi32(bufs.corr[(r + k) * nb + b]);
      }
      for (int g = 0; g < 8; ++g) {
        const __m512i x = _mm512_loadu_si512(xb + 64 * g);
        for (int k = 0; k < kR; ++k) {
          const __m512i w = _mm512_set1_epi32(bufs.wq[((r + k) * nb + b) * 8 + g]);
          is[k] = kMin ? _mm512_dpbusd_epi32(is[k], w, x) : _mm512_dpbusd_epi32(is[k], x, w);
        }
      }
      const __m512 xdv = _mm512_loadu_ps(xd + 16 * b);
      for (int k = 0; k < kR; ++k) {
        const __m512 f = _mm512_cvtepi32_ps(is[k]);
        const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(bufs.dw[(r + k) * nb + b]), xdv);
        __m512& chain = acc[k][ChainOf(i)];
        chain = _mm512_fmadd_ps(scale, f, chain);
        if constexpr (kMin) {
          chain = _mm512_fmadd_ps(_mm512_set1_ps(bufs.mw[(r + k) * nb + b]), _mm512_loadu_ps(xs + 16 * b), chain);
        }
      }
    }
  }
  for (int k = 0; k < kR; ++k) {
    const __m512 sum = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[k][0], acc[k][4]), _mm512_add_ps(acc[k][2], acc[k][6])),
        _mm512_add_ps(_mm512_add_ps(acc[k][1], acc[k][5]), _mm512_add_ps(acc[k][3], acc[k][7])));
    alignas(64) float out[16];
    _mm512_store_ps(out, sum);
    for (int64_t j = 0; j < n; ++j) a.y[(t0 + j) * a.w->rows + o0 + r + k] = out[j];
  }
}

template <typename Weights, bool kMin>
void RunTiles(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kBlockBytes = Weights::kBlockBytes;
  constexpr int64_t kTileRows = 8;
  const int64_t nb = a.w->cols / 32;
  thread_local std::vector<int32_t> wq_buf, corr_buf;
  thread_local std::vector<float> dw_buf, mw_buf;
  wq_buf.resize(kTileRows * nb * 8);
  corr_buf.resize(kTileRows * nb);
  dw_buf.resize(kTileRows * nb);
  mw_buf.resize(kTileRows * nb);
  const auto* base = static_cast<const uint8_t*>(a.w->data);
  const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t o0 = row_begin; o0 < row_end; o0 += kTileRows) {
    const int64_t chunk = std::min(kTileRows, row_end - o0);
    for (int64_t r = 0; r < chunk; ++r) {
      // Plain pointers: the compiler cannot keep a thread_local vector's data
      // pointer in a register across the stores below.
      int32_t* const wq = wq_buf.data() + r * nb * 8;
      int32_t* const corr = corr_buf.data() + r * nb;
      float* const dw = dw_buf.data() + r * nb;
      float* const mw = mw_buf.data() + r * nb;
      const uint8_t* row = base + static_cast<size_t>(o0 + r) * a.w->row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + kBlockBytes * b;
        const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU32(blk))));
        dw[b] = _mm_cvtss_f32(dm);
        mw[b] = kMin ? _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1)) : 0.0f;
        const __m256i w = Weights::Load(blk);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&wq[8 * b]), w);
        if constexpr (!kMin) {
          // sum((x + 128) * w) - 128 * sum(w) = sum(x * w), all exact in int32.
          const __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), k128, w);
          __m128i h = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
          h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
          h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
          corr[b] = -_mm_cvtsi128_si32(h);
        }
      }
    }
    const TileBuffers buffers{wq_buf.data(), corr_buf.data(), dw_buf.data(), mw_buf.data()};
    for (int64_t tile = 0; tile < a.xt.tiles; ++tile) {
      const uint8_t* xq = a.xt.q + tile * nb * 512;
      const float* xd = a.xt.d + tile * nb * 16;
      const float* xs = kMin ? a.xt.s + tile * nb * 16 : nullptr;
      const int64_t t0 = tile * 16;
      const int64_t n = std::min<int64_t>(16, a.xt.tile_tokens - t0);
      int64_t r = 0;
      for (; r + 2 <= chunk; r += 2) TileRows<Weights, kMin, 2>(a, buffers, nb, r, xq, xd, xs, t0, n, o0);
      if (r < chunk) TileRows<Weights, kMin, 1>(a, buffers, nb, r, xq, xd, xs, t0, n, o0);
    }
  }
}

// A 32-value block format: its first tiles (when the call has them), then
// the row kernels for the remaining tokens.
template <typename Weights, bool kMin>
void RunFormat(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  if (a.xt.tiles > 0) RunTiles<Weights, kMin>(a, row_begin, row_end);
  RunRowGroups<BlockKernel<Weights, kMin>>(a, row_begin, row_end);
}

}  // namespace

void MatMulRowsAvx512(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.w->dtype) {
    case DType::kF32:
      return RunRowGroups<FloatKernel<DType::kF32>>(a, row_begin, row_end);
    case DType::kF16:
      return RunRowGroups<FloatKernel<DType::kF16>>(a, row_begin, row_end);
    case DType::kBF16:
      return RunRowGroups<FloatKernel<DType::kBF16>>(a, row_begin, row_end);
    case DType::kQ8_0:
      return RunFormat<Q8_0Weights, false>(a, row_begin, row_end);
    case DType::kQ4_0:
      return RunFormat<Q4_0Weights, false>(a, row_begin, row_end);
    case DType::kQ5_0:
      return RunFormat<Q5_0Weights, false>(a, row_begin, row_end);
    case DType::kIQ4_NL:
      return RunFormat<Iq4NlWeights, false>(a, row_begin, row_end);
    case DType::kQ4_1:
      return RunFormat<Q4_1Weights, true>(a, row_begin, row_end);
    case DType::kQ5_1:
      return RunFormat<Q5_1Weights, true>(a, row_begin, row_end);
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_XS:
    case DType::kQ2_K:
    case DType::kQ3_K:
      // The tile kernel for the first tiles, the AVX2 row kernels for the
      // rest; both give the scalar kernel's bits.
      if (a.xt.tiles > 0) SuperBlockTilesAvx512(a, row_begin, row_end);
      return MatMulRowsSuperBlockAvx2(a, row_begin, row_end);
  }
}

}  // namespace tessera::kernels::internal
