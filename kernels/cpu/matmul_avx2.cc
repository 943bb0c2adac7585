// AVX2 + FMA + F16C row kernels (compiled with -mavx2 -mfma -mf16c; called only
// when cpu/isa.cc found those features).
//
// Fixed per-(token,row) reduction orders:
//  - float formats: two 8-lane accumulators over 16-column steps, then one
//    8-column step into the first, then a zero-padded tail into the second;
//    finally HSum(acc0 + acc1).
//  - the 32-value block formats: per block, the exact int32 lane sums of
//    maddubs+madd are converted to float and FMA'd with (d_w * d_x) into one
//    of two 8-lane accumulators (even blocks, odd blocks); result
//    HSum(acc0 + acc1), plus for Q4_1 the m_w * s_x terms (see
//    MinBlockKernel). Q4_0's nibbles and Q5_0's 5-bit values are unpacked to
//    signed bytes (q - 8, q - 16) and then take Q8_0's path
//    (SignedBlockKernel); Q5_1's take Q4_1's. Integer sums stay exact, as
//    llama.cpp's.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/matmul_internal.h"

namespace tessera::kernels::internal {
namespace {

float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _cvtsh_ss(h);
}

template <DType kType>
__m256 Load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  } else {
    const __m256i w = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}

template <DType kType>
float LoadOne(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    float f;
    std::memcpy(&f, row + 4 * i, sizeof(f));
    return f;
  } else if constexpr (kType == DType::kF16) {
    return LoadHalf(row + 2 * i);
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, sizeof(h));
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
  }
}

template <DType kType>
struct FloatKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t n = a.w->cols;
    const float* x[NT];
    __m256 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      x[k] = a.x + (t0 + k) * n;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 w0 = Load8<kType>(row, i);
      const __m256 w1 = Load8<kType>(row, i + 8);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), acc0[k]);
        acc1[k] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[k] + i + 8), acc1[k]);
      }
    }
    if (i + 8 <= n) {
      const __m256 w0 = Load8<kType>(row, i);
      for (int k = 0; k < NT; ++k) {
        acc0[k] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), acc0[k]);
      }
      i += 8;
    }
    if (i < n) {
      alignas(32) float wt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t j = i; j < n; ++j) wt[j - i] = LoadOne<kType>(row, j);
      const __m256 w0 = _mm256_load_ps(wt);
      for (int k = 0; k < NT; ++k) {
        alignas(32) float xt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        std::memcpy(xt, x[k] + i, sizeof(float) * (n - i));
        acc1[k] = _mm256_fmadd_ps(w0, _mm256_load_ps(xt), acc1[k]);
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k]));
    }
  }
};

#define TESSERA_INLINE inline __attribute__((always_inline))

// The 32 signed weights of a block whose f16 scale comes first: Q8_0's
// int8 quants as stored, Q4_0's nibbles as q - 8 (values 0..15 from the low
// nibbles, 16..31 from the high ones).
struct Q8_0Weights {
  static constexpr int64_t kBlockBytes = 34;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  }
};
struct Q4_0Weights {
  static constexpr int64_t kBlockBytes = 18;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                       _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
  }
};

// Q5_0 / Q5_1: the nibbles as Q4_0's, plus bit j of qh (a little-endian
// uint32) as value j's fifth bit: byte j of the broadcast picks byte j/8 of
// qh, and a mask with all bits but bit j%8 set turns it into 0xFF exactly
// when that bit is set.
TESSERA_INLINE __m256i Unpack5(const uint8_t* qh_bytes, const uint8_t* qs) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                         0x0303030303030303));
  const __m256i set = _mm256_cmpeq_epi8(
      _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi8(-1));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i lo = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                      _mm256_set1_epi8(0x0F));
  return _mm256_or_si256(lo, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}
// IQ4_NL: each nibble looks its value up in kIq4Values (a byte shuffle).
struct Iq4NlWeights {
  static constexpr int64_t kBlockBytes = 18;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                       _mm256_set1_epi8(0x0F));
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
    return _mm256_shuffle_epi8(_mm256_set_m128i(table, table), q);
  }
};
struct Q5_0Weights {
  static constexpr int64_t kBlockBytes = 22;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) {
    return _mm256_sub_epi8(Unpack5(blk + 2, blk + 6), _mm256_set1_epi8(16));
  }
};

// The unsigned weights of blocks with an f16 scale and an f16 minimum
// first: Q4_1's nibbles, Q5_1's 5-bit values.
struct Q4_1Weights {
  static constexpr int64_t kBlockBytes = 20;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4));
    // Values 0..15 sit in the low nibbles, 16..31 in the high ones.
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                            _mm256_set1_epi8(0x0F));
  }
};
struct Q5_1Weights {
  static constexpr int64_t kBlockBytes = 24;
  static TESSERA_INLINE __m256i Load(const uint8_t* blk) { return Unpack5(blk + 4, blk + 8); }
};

// Q8_0, Q4_0 and Q5_0: blocks alternate between two accumulators (even
// blocks acc0, odd blocks acc1) to hide FMA latency.
template <typename Weights>
struct SignedBlockKernel {
  template <int NT>
  static TESSERA_INLINE void Block(const uint8_t* blk, int64_t b, const int8_t* const* q,
                                   const float* const* dx, __m256i ones, __m256* acc) {
    const float dw = LoadHalf(blk);
    const __m256i w = Weights::Load(blk);
    // maddubs wants unsigned x signed: move w's sign onto x. |w| <= 128 and
    // |x| <= 127, so the int16 pair sums (<= 32512) cannot saturate.
    const __m256i abs_w = _mm256_sign_epi8(w, w);
    for (int k = 0; k < NT; ++k) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k] + 32 * b));
      const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(xv, w));
      const __m256i p32 = _mm256_madd_epi16(p16, ones);
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx[k][b]), _mm256_cvtepi32_ps(p32), acc[k]);
    }
  }

  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nb = cols / 32;
    const int8_t* q[NT];
    const float* dx[NT];
    __m256 acc0[NT], acc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    constexpr int64_t kBytes = Weights::kBlockBytes;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      Block<NT>(row + kBytes * b, b, q, dx, ones, acc0);
      Block<NT>(row + kBytes * (b + 1), b + 1, q, dx, ones, acc1);
    }
    if (b < nb) Block<NT>(row + kBytes * b, b, q, dx, ones, acc0);
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k]));
    }
  }
};

// Q4_1 and Q5_1: accumulator alternation as Q8_0. The m_w * s_x terms ride
// along in 4-lane vectors (d*dx, m*sx, 0, 0) summed per accumulator; mins =
// lane 1 of (macc0 + macc1). maddubs takes the unsigned weights (<= 31)
// against signed x (|x| <= 127): pair sums stay below int16's limit.
template <typename Weights>
struct MinBlockKernel {
  template <int NT>
  static TESSERA_INLINE void Block(const uint8_t* blk, int64_t b, const int8_t* const* q,
                                   const float* const* dx, const float* const* sx,
                                   __m256i ones, __m256* acc, __m128* macc) {
    uint32_t dm_bits;
    std::memcpy(&dm_bits, blk, sizeof(dm_bits));
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(dm_bits)));  // (d, m, 0, 0)
    const __m256i w = Weights::Load(blk);
    for (int k = 0; k < NT; ++k) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k] + 32 * b));
      const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xv), ones);
      const __m128 prod =
          _mm_mul_ps(dm, _mm_unpacklo_ps(_mm_load_ss(dx[k] + b), _mm_load_ss(sx[k] + b)));
      acc[k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(prod), _mm256_cvtepi32_ps(p32), acc[k]);
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
    __m256 acc0[NT], acc1[NT];
    __m128 macc0[NT], macc1[NT];
    for (int k = 0; k < NT; ++k) {
      q[k] = a.qx.q + (t0 + k) * cols;
      dx[k] = a.qx.d + (t0 + k) * nb;
      sx[k] = a.qx.s + (t0 + k) * nb;
      acc0[k] = _mm256_setzero_ps();
      acc1[k] = _mm256_setzero_ps();
      macc0[k] = _mm_setzero_ps();
      macc1[k] = _mm_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    constexpr int64_t kBytes = Weights::kBlockBytes;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      Block<NT>(row + kBytes * b, b, q, dx, sx, ones, acc0, macc0);
      Block<NT>(row + kBytes * (b + 1), b + 1, q, dx, sx, ones, acc1, macc1);
    }
    if (b < nb) Block<NT>(row + kBytes * b, b, q, dx, sx, ones, acc0, macc0);
    for (int k = 0; k < NT; ++k) {
      const __m128 m = _mm_add_ps(macc0[k], macc1[k]);
      const float mins = _mm_cvtss_f32(_mm_shuffle_ps(m, m, 1));
      a.y[(t0 + k) * a.w->rows + o] = HSum(_mm256_add_ps(acc0[k], acc1[k])) + mins;
    }
  }
};

// The K-quants (layouts in kernels/dtype.h) against Q8_K activations. Per
// super-block the integer sums are exactly the scalar kernel's
// (kquants.cc), formed here with maddubs (unsigned quants <= 63 against
// int8 x: pair sums <= 16002, no saturation) and madd by the sub-block
// scales; then the same float operations in the same order, so the results
// are the scalar kernel's bits on every ISA. The weights of a super-block
// are unpacked once and reused by every token of the group.
TESSERA_INLINE int32_t HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

TESSERA_INLINE float HalfAt(const uint8_t* p) { return LoadHalf(p); }

// The 6-bit (scale, min) pair of sub-block j of a Q4_K/Q5_K super-block.
TESSERA_INLINE void KScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (kQ5 false) and Q5_K: acc += (d_w * d_x) * isum, macc += (dmin_w *
// d_x) * msum per super-block; result acc - macc.
template <bool kQ5>
struct Q45KKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    constexpr int64_t kBytes = kQ5 ? 176 : 144;
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT], macc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = macc[k] = 0.0f;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + kBytes * b;
      int sc[8], m[8];
      for (int j = 0; j < 8; ++j) KScaleMin(blk + 4, j, &sc[j], &m[j]);
      const uint8_t* qs = blk + (kQ5 ? 48 : 16);
      __m256i w[8];  // sub-block j's 32 values, unsigned
      const __m256i qh =
          kQ5 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16)) : _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        w[2 * c] = _mm256_and_si256(raw, low4);
        w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        if constexpr (kQ5) {
          // Bit j of qh[l] is value l of sub-block j's fifth bit.
          for (int h = 0; h < 2; ++h) {
            const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + h), one);
            w[2 * c + h] = _mm256_or_si256(w[2 * c + h], _mm256_slli_epi16(bit, 4));
          }
        }
      }
      const float d = HalfAt(blk);
      const float dmin = HalfAt(blk + 2);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(w[j], xv),
                                                        _mm256_set1_epi16(static_cast<int16_t>(sc[j]))));
        }
        int32_t msum = 0;
        for (int j = 0; j < 8; ++j) msum += m[j] * (bs[2 * j] + bs[2 * j + 1]);
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        acc[k] += (d * dx) * static_cast<float>(HSumI32(sum));
        macc[k] += (dmin * dx) * static_cast<float>(msum);
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k] - macc[k];
  }
};

// Q6_K: the unsigned quants q (0..63) against x, minus 32 * sum over
// sub-blocks of scale * (the sub-block's sum of x, Q8_K's bsums): exactly
// the scalar kernel's sum of scale * (q - 32) * x. acc += (d_w * d_x) * isum.
struct Q6KKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = 0.0f;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i three = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + 210 * b;
      const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
      __m256i w[8];      // values 128h + 32k + l, l < 32, in w[4h + k]
      __m256i scale[8];  // their sub-blocks' scales: 8h + 2k (l < 16), + 1
      for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
        const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
        const __m256i lo[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                               _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                               _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
        for (int k = 0; k < 4; ++k) {
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
          w[4 * h + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(hi, 4));
          const int s = 8 * h + 2 * k;
          scale[4 * h + k] = _mm256_set_m128i(_mm_set1_epi16(scales[s + 1]), _mm_set1_epi16(scales[s]));
        }
      }
      const float d = HalfAt(blk + 208);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        __m256i sum = _mm256_setzero_si256();
        for (int i = 0; i < 8; ++i) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * i));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], xv), scale[i]));
        }
        int32_t offset = 0;
        for (int s = 0; s < 16; ++s) offset += scales[s] * bs[s];
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        acc[k] += (d * dx) * static_cast<float>(HSumI32(sum) - 32 * offset);
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k];
  }
};

// Q2_K and Q3_K: per super-block, for each half h and bit pair j, the 32
// values 128h + 32j + l as unsigned bytes u (Q2_K: q in 0..3; Q3_K: q + 4 in
// 0..7, so q = u - 4), maddubs against x and madd by the scales of their two
// 16-value sub-blocks (8h + 2j, + 1). Q3_K then subtracts 4 * sum_s scale_s *
// bsum_s. The integer sums are the scalar kernel's (low_bit_kquants.cc), and
// so are the float operations: the same bits on every ISA.
template <bool kQ3>
struct LowBitKKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    constexpr int64_t kBytes = kQ3 ? 110 : 84;
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT], macc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = macc[k] = 0.0f;
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + kBytes * b;
      int sc[16], mn[16];
      if constexpr (kQ3) {
        UnpackQ3Scales(blk + 96, sc);
      } else {
        for (int s = 0; s < 16; ++s) {
          sc[s] = blk[s] & 0x0F;
          mn[s] = blk[s] >> 4;
        }
      }
      const uint8_t* qs = blk + (kQ3 ? 32 : 16);
      const __m256i hmask = kQ3 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk))
                                : _mm256_setzero_si256();
      __m256i w[8], scale[8];
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
        for (int j = 0; j < 4; ++j) {
          __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), three);
          if constexpr (kQ3) {
            const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + j), one);
            u = _mm256_or_si256(u, _mm256_slli_epi16(hb, 2));
          }
          const int s = 8 * h + 2 * j;
          w[4 * h + j] = u;
          scale[4 * h + j] = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(sc[s + 1])),
                                              _mm_set1_epi16(static_cast<int16_t>(sc[s])));
        }
      }
      const float d = HalfAt(blk + (kQ3 ? 108 : 80));
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        const int16_t* bs = a.qx.bsums + ((t0 + k) * nbk + b) * 16;
        __m256i sum = _mm256_setzero_si256();
        for (int i = 0; i < 8; ++i) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * i));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], xv), scale[i]));
        }
        const float dx = a.qx.d[(t0 + k) * nbk + b];
        int32_t side = 0;  // Q2_K: the mins' sum; Q3_K: the offset's
        for (int s = 0; s < 16; ++s) side += (kQ3 ? sc[s] : mn[s]) * bs[s];
        if constexpr (kQ3) {
          acc[k] += (d * dx) * static_cast<float>(HSumI32(sum) - 4 * side);
        } else {
          acc[k] += (d * dx) * static_cast<float>(HSumI32(sum));
          macc[k] += (HalfAt(blk + 82) * dx) * static_cast<float>(side);
        }
      }
    }
    for (int k = 0; k < NT; ++k) {
      a.y[(t0 + k) * a.w->rows + o] = kQ3 ? acc[k] : acc[k] - macc[k];
    }
  }
};

// IQ4_XS: per sub-block the signed table values (|v| <= 127) against x,
// with the sign moved onto x as for Q8_0 (pair sums <= 32258), madd by the
// sub-block's ls - 32; the scalar kernel's integer sum and float order, so
// its bits.
struct Iq4XsKernel {
  template <int NT>
  static void Run(const MatMulArgs& a, const uint8_t* row, int64_t o, int64_t t0) {
    const int64_t cols = a.w->cols;
    const int64_t nbk = cols / kSuperBlock;
    float acc[NT];
    for (int k = 0; k < NT; ++k) acc[k] = 0.0f;
    const __m128i table128 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
    const __m256i table = _mm256_set_m128i(table128, table128);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nbk; ++b) {
      const uint8_t* blk = row + 136 * b;
      uint16_t scales_h;
      std::memcpy(&scales_h, blk + 2, sizeof(scales_h));
      __m256i w[8], abs_w[8], scale[8];
      for (int j = 0; j < 8; ++j) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 8 + 16 * j));
        w[j] = _mm256_shuffle_epi8(
            table, _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4));
        abs_w[j] = _mm256_sign_epi8(w[j], w[j]);
        const int ls = ((blk[4 + j / 2] >> (4 * (j % 2))) & 0x0F) | (((scales_h >> (2 * j)) & 3) << 4);
        scale[j] = _mm256_set1_epi16(static_cast<int16_t>(ls - 32));
      }
      const float d = HalfAt(blk);
      for (int k = 0; k < NT; ++k) {
        const int8_t* xq = a.qx.q + (t0 + k) * cols + kSuperBlock * b;
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j));
          const __m256i p16 = _mm256_maddubs_epi16(abs_w[j], _mm256_sign_epi8(xv, w[j]));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, scale[j]));
        }
        acc[k] += (d * a.qx.d[(t0 + k) * nbk + b]) * static_cast<float>(HSumI32(sum));
      }
    }
    for (int k = 0; k < NT; ++k) a.y[(t0 + k) * a.w->rows + o] = acc[k];
  }
};

template <typename Kernel>
void RunRows(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  const auto* base = static_cast<const uint8_t*>(a.w->data);
  for (int64_t o = row_begin; o < row_end; ++o) {
    const uint8_t* row = base + static_cast<size_t>(o) * a.w->row_bytes;
    int64_t t = 0;
    for (; t + kTokenGroup <= a.tokens; t += kTokenGroup) {
      Kernel::template Run<kTokenGroup>(a, row, o, t);
    }
    switch (a.tokens - t) {
      case 3:
        Kernel::template Run<3>(a, row, o, t);
        break;
      case 2:
        Kernel::template Run<2>(a, row, o, t);
        break;
      case 1:
        Kernel::template Run<1>(a, row, o, t);
        break;
      default:
        break;
    }
  }
}

static_assert(kTokenGroup == 4, "RunRows' remainder switch assumes groups of 4");

}  // namespace

void MatMulRowsAvx2(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.w->dtype) {
    case DType::kF32:
      return RunRows<FloatKernel<DType::kF32>>(a, row_begin, row_end);
    case DType::kF16:
      return RunRows<FloatKernel<DType::kF16>>(a, row_begin, row_end);
    case DType::kBF16:
      return RunRows<FloatKernel<DType::kBF16>>(a, row_begin, row_end);
    case DType::kQ8_0:
      return RunRows<SignedBlockKernel<Q8_0Weights>>(a, row_begin, row_end);
    case DType::kQ4_0:
      return RunRows<SignedBlockKernel<Q4_0Weights>>(a, row_begin, row_end);
    case DType::kQ5_0:
      return RunRows<SignedBlockKernel<Q5_0Weights>>(a, row_begin, row_end);
    case DType::kQ4_1:
      return RunRows<MinBlockKernel<Q4_1Weights>>(a, row_begin, row_end);
    case DType::kQ5_1:
      return RunRows<MinBlockKernel<Q5_1Weights>>(a, row_begin, row_end);
    case DType::kQ4_K:
      return RunRows<Q45KKernel<false>>(a, row_begin, row_end);
    case DType::kQ5_K:
      return RunRows<Q45KKernel<true>>(a, row_begin, row_end);
    case DType::kQ6_K:
      return RunRows<Q6KKernel>(a, row_begin, row_end);
    case DType::kIQ4_NL:
      return RunRows<SignedBlockKernel<Iq4NlWeights>>(a, row_begin, row_end);
    case DType::kIQ4_XS:
      return RunRows<Iq4XsKernel>(a, row_begin, row_end);
    case DType::kQ2_K:
      return RunRows<LowBitKKernel<false>>(a, row_begin, row_end);
    case DType::kQ3_K:
      return RunRows<LowBitKKernel<true>>(a, row_begin, row_end);
  }
}

}  // namespace tessera::kernels::internal
