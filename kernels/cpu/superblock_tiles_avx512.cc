// AVX-512 VNNI tile kernel of the 256-value super-block formats (Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS; layouts in kernels/dtype.h) for prefill and
// batched decode: 16 tokens in the 16 lanes of a vector, compiled with the
// AVX-512 flags and called by MatMulRowsAvx512 for a call's first tiles (the
// row kernels of superblock_avx2.cc take the remaining tokens).
//
// Every format is brought to one shape when a row is unpacked: per
// super-block, its 256 signed values w_v (natural order, so w_v pairs with
// x_v; each format's values fit int8), a multiplier S_s per 16-value
// sub-block (a 32-value sub-block's scale is S_2j = S_2j+1), for Q2_K, Q4_K
// and Q5_K a minimum M_s per sub-block, and the float d (and dmin). The
// tiles hold x + 128 (unsigned, for VNNI), so
//   sum_v w_v x_v = sum_v w_v (x_v + 128) - 128 sum_v w_v,
// and the scalar kernel's integer sum is
//   isum = C + sum_s S_s * dot_s,   C = -128 sum_s S_s sum_{v in s} w_v,
//   msum = sum_s M_s * bsum_s       (Q8_K's 16-value sums of x),
// all exact int32 (wrapping adds are associative, and the final values are
// in range), so each equals the scalar kernel's sum. The float operations
// are the scalar kernel's, lane by lane and in super-block order:
//   acc += (d_w * d_x) * isum;  macc += (dmin_w * d_x) * msum;  acc - macc.
// So these results are the scalar kernels' bits, as the row kernels' are.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/superblock_weights_avx2.h"

namespace tessera::kernels::internal {
namespace {

// One super-block in the common shape.
struct SuperBlock {
  int8_t* w;    // 256 values
  int32_t* s;   // 16 multipliers S_s
  int16_t* m;   // 16 minimums M_s (formats with mins)
  float d = 0.0f;
  float dmin = 0.0f;
};

// w[i] - offset into values 32i..32i+31.
void StoreValues(const __m256i* w, int offset, SuperBlock& sb) {
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  for (int i = 0; i < 8; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sb.w + 32 * i), _mm256_sub_epi8(w[i], off));
  }
}

template <bool kQ5>
void UnpackQ45KTile(const uint8_t* blk, SuperBlock& sb) {
  __m256i w[8];
  int sc[8], m[8];
  UnpackQ45K<kQ5>(blk, w, sc, m);
  for (int j = 0; j < 8; ++j) {
    sb.s[2 * j] = sb.s[2 * j + 1] = sc[j];
    sb.m[2 * j] = sb.m[2 * j + 1] = static_cast<int16_t>(m[j]);
  }
  StoreValues(w, 0, sb);
  sb.d = HalfAt(blk);
  sb.dmin = HalfAt(blk + 2);
}

void UnpackQ6KTile(const uint8_t* blk, SuperBlock& sb) {
  __m256i w[8];
  UnpackQ6K(blk, w);
  for (int s = 0; s < 16; ++s) sb.s[s] = static_cast<int8_t>(blk[192 + s]);
  StoreValues(w, 32, sb);
  sb.d = HalfAt(blk + 208);
}

template <bool kQ3>
void UnpackLowBitKTile(const uint8_t* blk, SuperBlock& sb) {
  __m256i w[8];
  UnpackLowBitK<kQ3>(blk, w);
  if constexpr (kQ3) {
    int sc[16];
    UnpackQ3Scales(blk + 96, sc);
    for (int s = 0; s < 16; ++s) sb.s[s] = sc[s];
  } else {
    for (int s = 0; s < 16; ++s) {
      sb.s[s] = blk[s] & 0x0F;
      sb.m[s] = static_cast<int16_t>(blk[s] >> 4);
    }
  }
  StoreValues(w, kQ3 ? 4 : 0, sb);
  sb.d = HalfAt(blk + (kQ3 ? 108 : 80));
  sb.dmin = kQ3 ? 0.0f : HalfAt(blk + 82);
}

void UnpackIq4XsTile(const uint8_t* blk, SuperBlock& sb) {
  __m256i w[8];
  int ls[8];
  UnpackIq4Xs(blk, w, ls);
  for (int j = 0; j < 8; ++j) sb.s[2 * j] = sb.s[2 * j + 1] = ls[j];
  StoreValues(w, 0, sb);
  sb.d = HalfAt(blk);
}

// C = -128 * sum_s S_s * (sum of the sub-block's 16 values).
int32_t OffsetTerm(const SuperBlock& sb) {
  int32_t c = 0;
  for (int s = 0; s < 16; ++s) {
    int32_t sum = 0;
    for (int v = 0; v < 16; ++v) sum += sb.w[16 * s + v];
    c += sb.s[s] * sum;
  }
  return -128 * c;
}

struct FormatInfo {
  int64_t bytes;     // per super-block
  bool mins;         // Q2_K, Q4_K, Q5_K
  bool sub32;        // scales per 32 values (Q4_K, Q5_K, IQ4_XS)
  void (*unpack)(const uint8_t*, SuperBlock&);
};

FormatInfo InfoFor(DType t) {
  switch (t) {
    case DType::kQ4_K:
      return {144, true, true, UnpackQ45KTile<false>};
    case DType::kQ5_K:
      return {176, true, true, UnpackQ45KTile<true>};
    case DType::kQ6_K:
      return {210, false, false, UnpackQ6KTile};
    case DType::kQ2_K:
      return {84, true, false, UnpackLowBitKTile<false>};
    case DType::kQ3_K:
      return {110, false, false, UnpackLowBitKTile<true>};
    default:
      return {136, false, true, UnpackIq4XsTile};  // IQ4_XS
  }
}

// Tiles against rows: kSub32 takes a multiplier per 32 values, kMins the
// minimum terms.
template <bool kSub32, bool kMins>
void RunTiles(const MatMulArgs& a, const FormatInfo& info, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kTileRows = 8;
  const int64_t nbk = a.w->cols / kSuperBlock;
  const int64_t rows = a.w->rows;
  const int64_t per_chunk = kTileRows * nbk;
  thread_local std::vector<int8_t> w_buf;
  thread_local std::vector<int32_t> s_buf, c_buf;
  thread_local std::vector<int16_t> m_buf;
  thread_local std::vector<float> d_buf, dmin_buf;
  w_buf.resize(per_chunk * kSuperBlock);
  s_buf.resize(per_chunk * 16);
  m_buf.assign(per_chunk * 16, 0);
  c_buf.resize(per_chunk);
  d_buf.resize(per_chunk);
  dmin_buf.resize(per_chunk);
  const auto* base = static_cast<const uint8_t*>(a.w->data);
  for (int64_t o0 = row_begin; o0 < row_end; o0 += kTileRows) {
    const int64_t chunk = std::min(kTileRows, row_end - o0);
    for (int64_t r = 0; r < chunk; ++r) {
      const uint8_t* row = base + static_cast<size_t>(o0 + r) * a.w->row_bytes;
      for (int64_t b = 0; b < nbk; ++b) {
        const int64_t i = r * nbk + b;
        SuperBlock sb{w_buf.data() + i * kSuperBlock, s_buf.data() + i * 16, m_buf.data() + i * 16};
        info.unpack(row + info.bytes * b, sb);
        c_buf[i] = OffsetTerm(sb);
        d_buf[i] = sb.d;
        dmin_buf[i] = sb.dmin;
      }
    }
    for (int64_t tile = 0; tile < a.xt.tiles; ++tile) {
      const int64_t t0 = tile * 16;
      const int64_t n = std::min<int64_t>(16, a.xt.tile_tokens - t0);
      for (int64_t r = 0; r < chunk; ++r) {
        __m512 acc = _mm512_setzero_ps();
        __m512 macc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nbk; ++b) {
          const int64_t i = r * nbk + b;
          const int64_t tb = tile * nbk + b;
          const uint8_t* xq = a.xt.q + tb * 4096;  // 64 groups of 16 tokens x 4 bytes
          const int32_t* wb = reinterpret_cast<const int32_t*>(w_buf.data() + i * kSuperBlock);
          const int32_t* sc = s_buf.data() + i * 16;
          __m512i isum = _mm512_set1_epi32(c_buf[i]);
          constexpr int kSubs = kSub32 ? 8 : 16;
          constexpr int kGroups = 64 / kSubs;  // 4-value groups per sub-block
          for (int s = 0; s < kSubs; ++s) {
            __m512i dot0 = _mm512_setzero_si512();
            __m512i dot1 = _mm512_setzero_si512();
            for (int g = 0; g < kGroups; g += 2) {
              const int gg = s * kGroups + g;
              dot0 = _mm512_dpbusd_epi32(dot0, _mm512_loadu_si512(xq + 64 * gg), _mm512_set1_epi32(wb[gg]));
              dot1 = _mm512_dpbusd_epi32(dot1, _mm512_loadu_si512(xq + 64 * (gg + 1)),
                                         _mm512_set1_epi32(wb[gg + 1]));
            }
            const int32_t mult = sc[kSub32 ? 2 * s : s];
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_add_epi32(dot0, dot1), _mm512_set1_epi32(mult)));
          }
          const __m512 dx = _mm512_loadu_ps(a.xt.d + tb * 16);
          acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(d_buf[i]), dx),
                                                 _mm512_cvtepi32_ps(isum)));
          if constexpr (kMins) {
            const int16_t* mn = m_buf.data() + i * 16;
            const int16_t* bs = a.xt.bsums + tb * 256;  // 8 pairs x 16 tokens x 2
            __m512i msum = _mm512_setzero_si512();
            for (int p = 0; p < 8; ++p) {
              const int32_t pair = static_cast<int32_t>(static_cast<uint16_t>(mn[2 * p]) |
                                                        (static_cast<uint32_t>(static_cast<uint16_t>(mn[2 * p + 1])) << 16));
              msum = _mm512_dpwssd_epi32(msum, _mm512_loadu_si512(bs + 32 * p), _mm512_set1_epi32(pair));
            }
            macc = _mm512_add_ps(macc, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(dmin_buf[i]), dx),
                                                     _mm512_cvtepi32_ps(msum)));
          }
        }
        const __m512 y = kMins ? _mm512_sub_ps(acc, macc) : acc;
        alignas(64) float out[16];
        _mm512_store_ps(out, y);
        for (int64_t j = 0; j < n; ++j) a.y[(t0 + j) * rows + o0 + r] = out[j];
      }
    }
  }
}

}  // namespace

void SuperBlockTilesAvx512(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  const FormatInfo info = InfoFor(a.w->dtype);
  if (info.sub32) {
    if (info.mins) return RunTiles<true, true>(a, info, row_begin, row_end);
    return RunTiles<true, false>(a, info, row_begin, row_end);
  }
  if (info.mins) return RunTiles<false, true>(a, info, row_begin, row_end);
  return RunTiles<false, false>(a, info, row_begin, row_end);
}

}  // namespace tessera::kernels::internal
