// AVX-512F versions of vec_ops.h (compiled with -mavx512f and friends).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/vec_ops.h"

namespace tessera::kernels::internal {
namespace {

// The one definition of the AVX-512 dot product: DotAvx512 calls it, and
// AttendAvx512 inlines it, so both produce the same bits.
inline __attribute__((always_inline)) float DotInline(const float* a, const float* b,
                                                      int64_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  if (i + 16 <= n) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    i += 16;
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  const __m512 v = _mm512_add_ps(acc0, acc1);
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

float DotAvx512(const float* a, const float* b, int64_t n) { return DotInline(a, b, n); }

void AxpyAvx512(float alpha, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void HalfToFloatAvx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

}  // namespace tessera::kernels::internal

namespace tessera::kernels::internal {
namespace {

// Weighted sum of V rows with the output held in registers: lane-wise the
// same FMA sequence as AxpyAvx512 into a zeroed `out`, p = 0..n-1. kG queries
// (probs and out kG apart by `probs_stride` / kVecs * 16) run interleaved,
// which hides the FMA latency of each one's chains; each query's chains see
// exactly the steps they would alone.
template <int kVecs, int kG = 1>
void WeightedSum(const float* probs, int64_t probs_stride, const float* inv,
                 const float* const* v_rows, int32_t n, float* out) {
  __m512 acc[kG][kVecs];
  for (int g = 0; g < kG; ++g) {
    for (int j = 0; j < kVecs; ++j) acc[g][j] = _mm512_setzero_ps();
  }
  for (int32_t p = 0; p < n; ++p) {
    const float* v = v_rows[p];
    for (int g = 0; g < kG; ++g) {
      const __m512 a = _mm512_set1_ps(probs[g * probs_stride + p] * inv[g]);
      for (int j = 0; j < kVecs; ++j) {
        acc[g][j] = _mm512_fmadd_ps(a, _mm512_loadu_ps(v + 16 * j), acc[g][j]);
      }
    }
  }
  for (int g = 0; g < kG; ++g) {
    for (int j = 0; j < kVecs; ++j) _mm512_storeu_ps(out + (g * kVecs + j) * 16, acc[g][j]);
  }
}

// For each of `group` queries (probs g * stride apart): e_p = exp(s_p - max)
// in place, then their sum in double in position order; inv[g] = 1 / sum.
// The exponentials go first and the sums after, so no call sits on the sums'
// dependency chain (across a call the running sum would live in memory), and
// the queries' sums run interleaved.
void Exponentiate(const float* max, int group, int64_t stride, int32_t n, float* probs,
                  float* inv) {
  for (int g = 0; g < group; ++g) {
    float* pg = probs + g * stride;
    for (int32_t p = 0; p < n; ++p) pg[p] = std::exp(pg[p] - max[g]);
  }
  constexpr int kMaxGroup = 8;
  for (int g0 = 0; g0 < group; g0 += kMaxGroup) {
    const int count = group - g0 < kMaxGroup ? group - g0 : kMaxGroup;
    double sum[kMaxGroup] = {};
    for (int32_t p = 0; p < n; ++p) {
      for (int g = 0; g < count; ++g) sum[g] += probs[(g0 + g) * stride + p];
    }
    for (int g = 0; g < count; ++g) inv[g0 + g] = static_cast<float>(1.0 / sum[g]);
  }
}

// The steps after the scores, shared by both attend kernels: the
// exponentials, then the weighted sum of V rows.
void SoftmaxWeightedSum(float max, const float* const* v_rows, int32_t n, int head_dim,
                        float* probs, float* out) {
  float inv;
  Exponentiate(&max, 1, 0, n, probs, &inv);
  switch (head_dim) {
    case 64:
      return WeightedSum<4>(probs, 0, &inv, v_rows, n, out);
    case 128:
      return WeightedSum<8>(probs, 0, &inv, v_rows, n, out);
    default:
      break;
  }
  std::memset(out, 0, sizeof(float) * head_dim);
  for (int32_t p = 0; p < n; ++p) AxpyAvx512(probs[p] * inv, v_rows[p], out, head_dim);
}

// Scores of one query against 16 transposed positions at a time (see
// AttendTransposedAvx512); returns their maximum.
float TransposedScores(const float* q, const float* kt, int64_t kt_stride, int32_t n,
                       int head_dim, float scale, float* probs) {
  const __m512 vscale = _mm512_set1_ps(scale);
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int32_t p0 = 0; p0 < n; p0 += 16) {
    const float* k = kt + static_cast<int64_t>(p0) * head_dim;  // this block's 16-float rows
    // DotInline's lane l for the positions p0..p0+15.
    auto lane = [&](int l) {
      __m512 acc0 = _mm512_setzero_ps();
      __m512 acc1 = _mm512_setzero_ps();
      int i = 0;
      for (; i + 32 <= head_dim; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + l]), _mm512_load_ps(k + (i + l) * 16), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + 16 + l]),
                               _mm512_load_ps(k + (i + 16 + l) * 16), acc1);
      }
      if (i + 16 <= head_dim) {
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + l]), _mm512_load_ps(k + (i + l) * 16), acc0);
      }
      return _mm512_add_ps(acc0, acc1);
    };
    __m512 s8[8];
    for (int l = 0; l < 8; ++l) s8[l] = _mm512_add_ps(lane(l), lane(l + 8));
    __m512 s4[4];
    for (int l = 0; l < 4; ++l) s4[l] = _mm512_add_ps(s8[l], s8[l + 4]);
    const __m512 dot = _mm512_add_ps(_mm512_add_ps(s4[0], s4[2]), _mm512_add_ps(s4[1], s4[3]));
    const __m512 s = _mm512_mul_ps(dot, vscale);
    const int32_t left = n - p0;
    const __mmask16 m = left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1);
    _mm512_mask_storeu_ps(probs + p0, m, s);
    vmax = _mm512_mask_max_ps(vmax, m, s, vmax);
  }
  return _mm512_reduce_max_ps(vmax);
}

template <int kVecs>
void WeightedSumGroup(const float* probs, int64_t stride, const float* inv,
                      const float* const* v_rows, int32_t n, int group, float* out) {
  int g = 0;
  for (; g + 3 <= group; g += 3) {
    WeightedSum<kVecs, 3>(probs + g * stride, stride, inv + g, v_rows, n, out + g * kVecs * 16);
  }
  if (group - g == 2) WeightedSum<kVecs, 2>(probs + g * stride, stride, inv + g, v_rows, n, out + g * kVecs * 16);
  if (group - g == 1) WeightedSum<kVecs, 1>(probs + g * stride, stride, inv + g, v_rows, n, out + g * kVecs * 16);
}

}  // namespace

void AttendAvx512(const float* q, const float* const* k_rows, const float* const* v_rows,
                  int32_t n, int head_dim, float scale, float* probs, float* out) {
  float max = -INFINITY;
  for (int32_t p = 0; p < n; ++p) {
    const float s = DotInline(q, k_rows[p], head_dim) * scale;
    probs[p] = s;
    max = s > max ? s : max;  // std::fmax's result (a NaN score is skipped by both), inline
  }
  SoftmaxWeightedSum(max, v_rows, n, head_dim, probs, out);
}

// DotInline replayed with 16 positions in the lanes. DotInline's lane l
// (for head_dim % 16 == 0) is acc0_l = FMAs of elements l, l+32, l+64, ...
// (plus the 16-element step's l + 32k when head_dim % 32 == 16) and acc1_l
// of l+16, l+48, ..., each from zero in that order; then v_l = acc0_l +
// acc1_l and the HSum tree (l, l+8), (l, l+4), (l, l+2), (0, 1). Here each
// v_l is a vector over positions, built from the transposed rows with the
// same FMAs on the same operands, so every score has DotInline's bits. The
// running max takes _mm512_max_ps(s, max), which is `s > max ? s : max` per
// lane; the lanes' maxima then meet in a tree: the maximum is the same value
// (a tie between +0 and -0 can differ, and exp(s - max) does not see it).
// The group's weighted sums run interleaved (WeightedSum).
void AttendTransposedAvx512(const float* q, int group, const float* kt, int64_t kt_stride,
                            const float* const* v_rows, int32_t n, int head_dim, float scale,
                            float* probs, float* out) {
  const int64_t stride = kt_stride;  // probs of query g start at probs + g * stride
  float max[64], inv[64];
  for (int g = 0; g < group; ++g) {
    max[g] = TransposedScores(q + g * head_dim, kt, kt_stride, n, head_dim, scale, probs + g * stride);
  }
  Exponentiate(max, group, stride, n, probs, inv);
  switch (head_dim) {
    case 64:
      return WeightedSumGroup<4>(probs, stride, inv, v_rows, n, group, out);
    case 128:
      return WeightedSumGroup<8>(probs, stride, inv, v_rows, n, group, out);
    default:
      break;
  }
  for (int g = 0; g < group; ++g) {
    float* o = out + g * head_dim;
    std::memset(o, 0, sizeof(float) * head_dim);
    for (int32_t p = 0; p < n; ++p) AxpyAvx512(probs[g * stride + p] * inv[g], v_rows[p], o, head_dim);
  }
}

}  // namespace tessera::kernels::internal
