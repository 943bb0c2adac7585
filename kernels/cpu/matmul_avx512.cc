// AVX-512 (F/BW/VL/DQ/VNNI) row kernels, compiled with the matching -m flags
// and called only when cpu/isa.cc found those features.
//
// Fixed per-(token,row) reduction orders:
//  - float formats: two 16-lane accumulators over 32-column steps, then one
//    16-column step into the first, then a masked tail into the second;
//    finally HSum(acc0 + acc1).
//  - the 32-value block formats: blocks are taken two at a time into 16-lane vectors (lanes
//    0-7 block b, lanes 8-15 block b+1): VNNI gives exact int32 lane sums,
//    which are converted and FMA'd with (d_w * d_x) of their block. Pairs
//    alternate between two accumulators (to hide FMA latency); an odd last
//    block goes, alone in lanes 0-7, to the second. Result HSum(acc0 + acc1),
//    plus for Q4_1 the m_w * s_x terms (see MinBlockKernel). Q4_0's nibbles
//    and Q5_0's 5-bit values are unpacked to signed bytes (q - 8, q - 16)
//    and then take Q8_0's path exactly (SignedBlockKernel); Q5_1's take
//    Q4_1's. Integer sums stay exact, as llama.cpp's.
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

// Lanes 0-7 take element `lo` of a 4-float vector, lanes 8-15 element `hi`.
template <int lo, int hi>
TESSERA_INLINE __m512 SpreadPair(__m128 v) {
  const __m512i idx = _mm512_set_epi32(hi, hi, hi, hi, hi, hi, hi, hi, lo, lo, lo, lo, lo, lo, lo, lo);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

TESSERA_INLINE uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

TESSERA_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Q8_0, Q4_0 and Q5_0: blocks in pairs, pairs alternating between two
// accumulators (acc0 for pairs 0, 2, 4, ..., acc1 for 1, 3, 5, ...); an odd
// last block goes to acc1.
template <typename Weights>
struct SignedBlockKernel {
  static constexpr int64_t kBytes = Weights::kBlockBytes;

  template <int NT>
  static TESSERA_INLINE void Pair(const uint8_t* blk0, int64_t b, const int8_t* const* q,
                                  const float* const* dx, __m512i zero, __m512* acc) {
    const uint8_t* blk1 = blk0 + kBytes;
    // (d0, d1, 0, 0)
    const __m128 dw = _mm_cvtph_ps(
        _mm_cvtsi32_si128(static_cast<int>(LoadU16(blk0) | (uint32_t{LoadU16(blk1)} << 16))));
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(Weights::Load(blk0)),
                                         Weights::Load(blk1), 1);
    // VNNI multiplies unsigned by signed bytes: use |w| and move w's sign
    // onto x (|x| <= 127, so negating it is safe).
    const __m512i abs_w = _mm512_abs_epi8(w);
    const __mmask64 neg = _mm512_movepi8_mask(w);
    for (int k = 0; k < NT; ++k) {
      const __m512i xv = _mm512_loadu_si512(q[k] + 32 * b);
      const __m512i is = _mm512_dpbusd_epi32(zero, abs_w, _mm512_mask_sub_epi8(xv, neg, zero, xv));
      const __m128 dxv = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(dx[k] + b)));
      const __m512 scale = SpreadPair<0, 1>(_mm_mul_ps(dw, dxv));
      acc[k] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(is), acc[k]);
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    __m512 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      acc0[k] = _mm512_setzero_ps();
      acc1[k] = _mm512_setzero_ps();
    }
    const __m512i zero = _mm512_setzero_si512();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      Pair<NT>(row + kBytes * b, b, q, dx, zero, acc0);
      Pair<NT>(row + kBytes * (b + 2), b + 2, q, dx, zero, acc1);
    }
    if (b + 2 <= nb) {
      Pair<NT>(row + kBytes * b, b, q, dx, zero, acc0);
      b += 2;
    }
    if (b < nb) {
      const uint8_t* blk = row + kBytes * b;
      const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(LoadU16(blk)));  // (d, 0, 0, 0)
      // Lanes 8-15 hold zero weights, so their products are 0.
      const __m512i w = _mm512_inserti64x4(zero, Weights::Load(blk), 0);
      const __m512i abs_w = _mm512_abs_epi8(w);
      const __mmask64 neg = _mm512_movepi8_mask(w);
      for (int k = 0; k < NT; ++k) {
        const __m512i xv = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, q[k] + 32 * b);
        const __m512i is = _mm512_dpbusd_epi32(zero, abs_w, _mm512_mask_sub_epi8(xv, neg, zero, xv));
        const __m512 scale = SpreadPair<0, 1>(_mm_mul_ps(dw, _mm_load_ss(dx[k] + b)));
        acc1[k] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(is), acc1[k]);
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm512_add_ps(acc0[k], acc1[k]));
    }
  }
};

// Q4_1 and Q5_1: same pairing and accumulator alternation as Q8_0. The
// m_w * s_x terms ride along in 4-lane vectors (d0*dx0, m0*sx0, d1*dx1,
// m1*sx1), summed per accumulator; mins = lane 1 + lane 3 of (macc0 + macc1).
template <typename Weights>
struct MinBlockKernel {
  static constexpr int64_t kBytes = Weights::kBlockBytes;

  template <int NT>
  static TESSERA_INLINE void Pair(const uint8_t* blk0, int64_t b, const int8_t* const* q,
                                  const float* const* dx, const float* const* sx, __m512i zero,
                                  __m512* acc, __m128* macc) {
    const uint8_t* blk1 = blk0 + kBytes;
    // (d0, m0, d1, m1)
    const __m128 dm = _mm_cvtph_ps(_mm_set_epi32(0, 0, static_cast<int>(LoadU32(blk1)),
                                                 static_cast<int>(LoadU32(blk0))));
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(Weights::Load(blk0)),
                                         Weights::Load(blk1), 1);
    for (int k = 0; k < NT; ++k) {
      const __m512i is = _mm512_dpbusd_epi32(zero, w, _mm512_loadu_si512(q[k] + 32 * b));
      // (dx0, sx0, dx1, sx1)
      const __m128 xs = _mm_unpacklo_ps(
          _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(dx[k] + b))),
          _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(sx[k] + b))));
      const __m128 prod = _mm_mul_ps(dm, xs);
      acc[k] = _mm512_fmadd_ps(SpreadPair<0, 2>(prod), _mm512_cvtepi32_ps(is), acc[k]);
      macc[k] = _mm_add_ps(macc[k], prod);
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    const float* sx[NT];
    __m512 acc0[NT], acc1[NT];
    __m128 macc0[NT], macc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      sx[k] = a.qx.s + (t0 + k) * nb;
      acc0[k] = _mm512_setzero_ps();
      acc1[k] = _mm512_setzero_ps();
      macc0[k] = _mm_setzero_ps();
      macc1[k] = _mm_setzero_ps();
    }
    const __m512i zero = _mm512_setzero_si512();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      Pair<NT>(row + kBytes * b, b, q, dx, sx, zero, acc0, macc0);
      Pair<NT>(row + kBytes * (b + 2), b + 2, q, dx, sx, zero, acc1, macc1);
    }
    if (b + 2 <= nb) {
      Pair<NT>(row + kBytes * b, b, q, dx, sx, zero, acc0, macc0);
      b += 2;
    }
    if (b < nb) {
      const uint8_t* blk = row + kBytes * b;
      const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU32(blk))));  // (d, m, 0, 0)
      const __m512i w = _mm512_inserti64x4(zero, Weights::Load(blk), 0);
      for (int k = 0; k < NT; ++k) {
        const __m512i xv = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, q[k] + 32 * b);
        const __m512i is = _mm512_dpbusd_epi32(zero, w, xv);
        const __m128 prod =
            _mm_mul_ps(dm, _mm_unpacklo_ps(_mm_load_ss(dx[k] + b), _mm_load_ss(sx[k] + b)));
        acc1[k] = _mm512_fmadd_ps(SpreadPair<0, 2>(prod), _mm512_cvtepi32_ps(is), acc1[k]);
        macc1[k] = _mm_add_ps(macc1[k], prod);
      }
    }
    for (int k = 0; k < NT; ++k) {
      const __m128 m = _mm_add_ps(macc0[k], macc1[k]);
      const float mins = _mm_cvtss_f32(_mm_shuffle_ps(m, m, 1)) + _mm_cvtss_f32(_mm_shuffle_ps(m, m, 3));
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm512_add_ps(acc0[k], acc1[k])) + mins;
    }
  }
};

// Tile kernel (prefill and batched decode): 16 tokens in the 16 lanes of a
// vector, one weight row at a time, so each weight byte is unpacked once per
// row and each VNNI instruction does 16 tokens' work. It reproduces the row
// kernels' arithmetic exactly, lane by lane. A row kernel's token owns 32
// float lanes: accumulator a (0 or 1) x lane l, where lane l = 8*(b%2) + g
// receives the int32 sum of 4-byte group g (columns 32b+4g..+3) of block b,
// scaled by d_w*d_x of that block, in increasing block order; the class
// c = 2a + (b%2) of block b follows the pairing above (ClassOf). Here those 32
// accumulators become 32 vectors over tokens, visited a class at a time (8
// live), and the final HSum tree and Q4_1 min terms are replayed as lane-wise
// adds in the same order. Every op is the same IEEE op on the same operands,
// so y[t][o] is bitwise what the row kernel gives, whichever path a token takes.
int ClassOf(int64_t b, int64_t nb) {
  if (nb % 4 == 1 && b == nb - 1) return 2;  // odd last block: acc1, lanes 0-7
  return static_cast<int>(2 * ((b / 2) % 2) + (b % 2));
}

// kMin: the formats with a block minimum (Q4_1, Q5_1: unsigned weights
// against x, plus m_w * s_x); otherwise signed weights against x + 128 with a
// correction (Q8_0, Q4_0, Q5_0).
template <typename Weights, bool kMin>
void RunTiles(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr bool kQ41 = kMin;
  constexpr int64_t kBlockBytes = Weights::kBlockBytes;
  const int64_t nb = a.w->cols / 32;
  const int64_t rows = a.w->rows;
  // Rows are taken kTileRows at a time: their weights are unpacked once
  // (bytes, the VNNI offset correction for the signed formats, the float
  // scales d and m), then every tile runs against all of them, so a tile's
  // activations are read from L1 once per row chunk instead of streaming all
  // tiles from L2 once per row. Blocks are listed by class, each in order.
  constexpr int64_t kTileRows = 8;
  thread_local std::vector<int32_t> wq_buf, corr_buf, order_buf;
  thread_local std::vector<float> dw_buf, mw_buf;
  wq_buf.resize(kTileRows * nb * 8);
  corr_buf.resize(kTileRows * nb * 8);
  dw_buf.resize(kTileRows * nb);
  mw_buf.resize(kTileRows * nb);
  order_buf.clear();
  int64_t class_end[4];
  for (int c = 0; c < 4; ++c) {
    for (int64_t b = 0; b < nb; ++b) {
      if (ClassOf(b, nb) == c) order_buf.push_back(static_cast<int32_t>(b));
    }
    class_end[c] = static_cast<int64_t>(order_buf.size());
  }
  const int32_t* const order = order_buf.data();
  const auto* base = static_cast<const uint8_t*>(a.w->data);
  const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t o0 = row_begin; o0 < row_end; o0 += kTileRows) {
    const int64_t chunk = std::min(kTileRows, row_end - o0);
    for (int64_t r = 0; r < chunk; ++r) {
      // Plain pointers: the compiler cannot keep a thread_local vector's data
      // pointer in a register across the stores below.
      int32_t* const wq = wq_buf.data() + r * nb * 8;
      int32_t* const corr = corr_buf.data() + r * nb * 8;
      float* const dw = dw_buf.data() + r * nb;
      float* const mw = mw_buf.data() + r * nb;
      const uint8_t* row = base + static_cast<size_t>(o0 + r) * a.w->row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + kBlockBytes * b;
        if constexpr (kQ41) {
          const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU32(blk))));
          dw[b] = _mm_cvtss_f32(dm);
          mw[b] = _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(&wq[8 * b]), Weights::Load(blk));
        } else {
          // Q8_0, and Q4_0 / Q5_0 as their signed bytes: the same arithmetic.
          dw[b] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(LoadU16(blk))));
          const __m256i w = Weights::Load(blk);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(&wq[8 * b]), w);
          // sum((x + 128) * w) - 128 * sum(w) = sum(x * w), all exact in int32.
          const __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), k128, w);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(&corr[8 * b]),
                              _mm256_sub_epi32(_mm256_setzero_si256(), c));
        }
      }
    }
    for (int64_t tile = 0; tile < a.xt.tiles; ++tile) {
      const uint8_t* xq = a.xt.q + tile * nb * 512;
      const float* xd = a.xt.d + tile * nb * 16;
      const float* xs = kQ41 ? a.xt.s + tile * nb * 16 : nullptr;
      const int64_t t0 = tile * 16;
      const int64_t n = std::min<int64_t>(16, a.xt.tile_tokens - t0);
      for (int64_t r = 0; r < chunk; ++r) {
        const int32_t* const wq = wq_buf.data() + r * nb * 8;
        const int32_t* const corr = corr_buf.data() + r * nb * 8;
        const float* const dw = dw_buf.data() + r * nb;
        const float* const mw = mw_buf.data() + r * nb;
        __m512 lanes[2][8];  // [b%2][g]: acc0 + acc1 of the row kernel
        __m512 mins[4];
        int64_t k = 0;
        for (int c = 0; c < 4; ++c) {
          __m512 acc[8];
          for (int g = 0; g < 8; ++g) acc[g] = _mm512_setzero_ps();
          __m512 macc = _mm512_setzero_ps();
          for (; k < class_end[c]; ++k) {
            const int64_t b = order[k];
            const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(dw[b]), _mm512_loadu_ps(xd + 16 * b));
            const uint8_t* xb = xq + b * 512;
            for (int g = 0; g < 8; ++g) {
              const __m512i xv = _mm512_loadu_si512(xb + 64 * g);
              const __m512i wv = _mm512_set1_epi32(wq[8 * b + g]);
              const __m512i is = kQ41 ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv)
                                      : _mm512_dpbusd_epi32(_mm512_set1_epi32(corr[8 * b + g]), xv, wv);
              acc[g] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(is), acc[g]);
            }
            if constexpr (kQ41) {
              macc = _mm512_add_ps(macc, _mm512_mul_ps(_mm512_set1_ps(mw[b]), _mm512_loadu_ps(xs + 16 * b)));
            }
          }
          mins[c] = macc;
          for (int g = 0; g < 8; ++g) {
            // Classes 0, 1 are acc0; 2, 3 are acc1: HSum(acc0 + acc1) adds them first.
            lanes[c % 2][g] = c < 2 ? acc[g] : _mm512_add_ps(lanes[c % 2][g], acc[g]);
          }
        }
        // HSum over the 16 row-kernel lanes l = 8h + g: (l, l+8), (l, l+4), (l, l+2), (l, l+1).
        __m512 s8[8];
        for (int g = 0; g < 8; ++g) s8[g] = _mm512_add_ps(lanes[0][g], lanes[1][g]);
        __m512 s4[4];
        for (int g = 0; g < 4; ++g) s4[g] = _mm512_add_ps(s8[g], s8[g + 4]);
        const __m512 s2a = _mm512_add_ps(s4[0], s4[2]);
        const __m512 s2b = _mm512_add_ps(s4[1], s4[3]);
        __m512 sum = _mm512_add_ps(s2a, s2b);
        if constexpr (kQ41) {
          const __m512 m = _mm512_add_ps(_mm512_add_ps(mins[0], mins[2]), _mm512_add_ps(mins[1], mins[3]));
          sum = _mm512_add_ps(sum, m);
        }
        alignas(64) float out[16];
        _mm512_store_ps(out, sum);
        for (int64_t j = 0; j < n; ++j) a.y[(t0 + j) * rows + o0 + r] = out[j];
      }
    }
  }
}

// A 32-value block format: its first tiles (when the call has them), then
// the row kernels for the remaining tokens.
template <typename Weights, bool kMin>
void RunFormat(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  if (a.xt.tiles > 0) RunTiles<Weights, kMin>(a, row_begin, row_end);
  if constexpr (kMin) {
    RunRowGroups<MinBlockKernel<Weights>>(a, row_begin, row_end);
  } else {
    RunRowGroups<SignedBlockKernel<Weights>>(a, row_begin, row_end);
  }
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
      // The AVX2 kernels, which give the scalar kernel's bits (a 512-bit
      // version would have to keep that exact integer order too).
      return MatMulRowsSuperBlockAvx2(a, row_begin, row_end);
  }
}

}  // namespace tessera::kernels::internal
