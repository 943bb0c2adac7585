// Q4_0, Q5_0, Q5_1 and the K-quants (Q4_K, Q5_K, Q6_K): DequantizeRow and MatMul against
// float64 references decoded here straight from the GGML layouts (written
// independently of kernels/cpu/kquants.cc), and batch invariance by memcmp.
// Run on every ISA this CPU has (the formats have scalar kernels only, which
// every ISA's dispatcher must route to).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/quantize.h"
#include "kernels/dtype.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace tessera::kernels {
namespace {

using testing::HalfBitsToDouble;
using testing::IsaTest;
using testing::RandomVector;
using testing::RoundToHalf;

constexpr DType kNewTypes[] = {DType::kQ4_0, DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL,
                               DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                               DType::kQ6_K, DType::kIQ4_XS};

bool IsK(DType t) {
  return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K || t == DType::kIQ4_XS ||
         t == DType::kQ2_K || t == DType::kQ3_K;
}

// ggml's kvalues_iq4nl, written out here independently of kernels/dtype.h.
constexpr int kIq4Table[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                               1,    13,   25,  38,  53,  69,  89,  113};
// Q5_1 takes Q8_1 activations: its minimum meets the f16 block sum s.
bool HasMin(DType t) { return t == DType::kQ5_1; }

double Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfBitsToDouble(h);
}

struct Weights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

// Random raw bytes for quants and packed scales; random finite f16 d/dmin.
Weights RandomQuantWeights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng,
                           size_t row_pad = 0) {
  Weights out;
  const size_t row_bytes = RowBytes(dtype, cols) + row_pad;
  out.bytes.resize(row_bytes * rows);
  testing::RandomizeQuantBlocks(dtype, out.bytes.data(), rows, cols, row_bytes, rng);
  out.w = {dtype, out.bytes.data(), rows, cols, row_bytes};
  return out;
}

// Element i of a row as its two parts, value = scaled - offset (offset is the
// sub-block minimum of Q4_K/Q5_K, 0 otherwise), in float64.
struct RefElem {
  double scaled;
  double offset;
  double value() const { return scaled - offset; }
};

RefElem DecodeRef(const WeightMatrix& w, int64_t r, int64_t i) {
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
  if (w.dtype == DType::kQ4_0) {
    const uint8_t* blk = row + 18 * (i / 32);
    const int j = i % 32;
    const int q = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
    return {Half(blk) * (q - 8), 0.0};
  }
  if (w.dtype == DType::kQ2_K || w.dtype == DType::kQ3_K) {
    // ggml's block_q2_K (scales[16], qs[64], d, dmin) and block_q3_K
    // (hmask[32], qs[64], scales[12], d). Value v = 128h + 32j + l is bits
    // 2j, 2j+1 of qs[32h + l]; its 16-value sub-block is 8h + 2j + l/16.
    const bool q3 = w.dtype == DType::kQ3_K;
    const uint8_t* blk = row + (q3 ? 110 : 84) * (i / 256);
    const int v = i % 256, h = v / 128, j = (v % 128) / 32, l = v % 32;
    const int sub = 8 * h + 2 * j + l / 16;
    const int bits = (blk[(q3 ? 32 : 16) + 32 * h + l] >> (2 * j)) & 3;
    if (!q3) {
      return {Half(blk + 80) * (blk[sub] % 16) * bits, Half(blk + 82) * (blk[sub] / 16)};
    }
    // Sixteen 6-bit scales: low 4 bits from a nibble of bytes 0..7 (low
    // nibbles for scales 0..7, high for 8..15), high 2 bits from bytes 8..11.
    const int low = sub < 8 ? blk[96 + sub] % 16 : blk[96 + sub - 8] / 16;
    const int high = (blk[96 + 8 + sub % 4] >> (2 * (sub / 4))) & 3;
    const int q = bits - (((blk[l] >> (4 * h + j)) & 1) ? 0 : 4);
    return {Half(blk + 108) * (low + 16 * high - 32) * q, 0.0};
  }
  if (w.dtype == DType::kIQ4_NL) {
    const uint8_t* blk = row + 18 * (i / 32);
    const int j = i % 32;
    const int q = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
    return {Half(blk) * kIq4Table[q], 0.0};
  }
  if (w.dtype == DType::kIQ4_XS) {
    // ggml's block_iq4_xs: d, scales_h (u16), scales_l[4], qs[128].
    const uint8_t* blk = row + 136 * (i / 256);
    const int v = i % 256, sub = v / 32, l = v % 32;
    const int scales_h = blk[2] | (blk[3] << 8);
    const int ls = ((blk[4 + sub / 2] >> (4 * (sub % 2))) & 15) | (((scales_h >> (2 * sub)) & 3) << 4);
    const uint8_t* qs = blk + 8 + 16 * sub;
    const int q = l < 16 ? (qs[l] & 15) : (qs[l - 16] >> 4);
    return {Half(blk) * (ls - 32) * kIq4Table[q], 0.0};
  }
  if (w.dtype == DType::kQ5_0 || w.dtype == DType::kQ5_1) {
    // ggml's block_q5_0 / block_q5_1: d, (m,) qh as a little-endian uint32,
    // then nibbles as Q4_0; the fifth bit of value j is bit j of qh.
    const bool q51 = w.dtype == DType::kQ5_1;
    const uint8_t* blk = row + (q51 ? 24 : 22) * (i / 32);
    const uint8_t* qh = blk + (q51 ? 4 : 2);
    const uint8_t* qs = qh + 4;
    const int j = i % 32;
    const uint32_t bits = qh[0] | (qh[1] << 8) | (qh[2] << 16) | (uint32_t{qh[3]} << 24);
    const int q = (j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4)) + 16 * ((bits >> j) & 1);
    if (q51) return {Half(blk) * q, -Half(blk + 2)};
    return {Half(blk) * (q - 16), 0.0};
  }
  const int v = i % 256;
  if (w.dtype == DType::kQ6_K) {
    const uint8_t* blk = row + 210 * (i / 256);
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
    const int half = v / 128, quarter = (v % 128) / 32, l = v % 32;
    const uint8_t lbyte = ql[64 * half + (quarter % 2 == 1 ? 32 : 0) + l];
    const int low = quarter < 2 ? (lbyte & 15) : (lbyte >> 4);
    const int high = (qh[32 * half + l] >> (2 * quarter)) & 3;
    const int q = low + 16 * high - 32;
    const int sc = scales[v / 16];  // 16 sub-blocks of 16, in order
    return {Half(blk + 208) * sc * q, 0.0};
  }
  const bool q5 = w.dtype == DType::kQ5_K;
  const uint8_t* blk = row + (q5 ? 176 : 144) * (i / 256);
  const uint8_t* s = blk + 4;
  const uint8_t* qh = blk + 16;
  const uint8_t* qs = blk + (q5 ? 48 : 16);
  const int sub = v / 32, l = v % 32;
  int sc, m;
  if (sub < 4) {
    sc = s[sub] % 64;
    m = s[sub + 4] % 64;
  } else {
    sc = (s[sub + 4] % 16) + 16 * (s[sub - 4] / 64);
    m = (s[sub + 4] / 16) + 16 * (s[sub] / 64);
  }
  const uint8_t byte = qs[32 * (sub / 2) + l];
  int q = sub % 2 == 0 ? byte % 16 : byte / 16;
  if (q5 && (qh[l] & (1 << sub))) q += 16;
  return {Half(blk) * sc * q, Half(blk + 2) * m};
}

// Per-token activation quantisation, transcribed from the spec: Q8_0 blocks of
// 32 for Q4_0 (kernels/cpu/quantize.h), Q8_K blocks of 256 for the K-quants.
struct QuantRef {
  std::vector<int> q;
  std::vector<double> dq;    // the scale the kernel multiplies by, per element
  std::vector<double> step;  // bound on |x - dq*q| per element
  std::vector<double> s;     // Q8_1 only: per block f16(d * sum(q)), d unrounded
};

int RoundHalfEven(float v) {
  double fl = std::floor(static_cast<double>(v));
  const double frac = v - fl;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(fl, 2.0) != 0)) fl += 1;
  return static_cast<int>(fl);
}

QuantRef QuantizeRef(DType dtype, const float* x, int64_t cols) {
  QuantRef r;
  r.q.resize(cols);
  r.dq.resize(cols);
  r.step.resize(cols);
  const int bs = IsK(dtype) ? 256 : 32;
  for (int64_t b = 0; b < cols / bs; ++b) {
    const float* xb = x + b * bs;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < bs; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    double dq, step;
    if (IsK(dtype)) {
      const float iscale = amax == 0.0f ? 0.0f : -127.0f / max;
      for (int j = 0; j < bs; ++j) r.q[b * bs + j] = std::min(127, RoundHalfEven(iscale * xb[j]));
      dq = amax == 0.0f ? 0.0 : static_cast<double>(1.0f / iscale);
      // Half a step, plus slack for the float product iscale*x and 1/iscale.
      step = 0.5001 * std::fabs(dq);
    } else {
      const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
      for (int j = 0; j < bs; ++j) r.q[b * bs + j] = RoundHalfEven(xb[j] * inv);
      const double d = static_cast<float>(amax / 127.0f);
      dq = RoundToHalf(d);
      step = 0.5001 * d + 127.0 * std::fabs(d - dq);
      int sum = 0;
      for (int j = 0; j < bs; ++j) sum += r.q[b * bs + j];
      r.s.push_back(RoundToHalf(static_cast<float>(static_cast<float>(d) * static_cast<float>(sum))));
    }
    for (int j = 0; j < bs; ++j) {
      r.dq[b * bs + j] = dq;
      r.step[b * bs + j] = step;
    }
  }
  return r;
}

std::vector<float> Activations(DType dtype, int64_t tokens, int64_t cols, std::mt19937& rng) {
  std::vector<float> x = RandomVector(tokens * cols, rng, 1.0f);
  const int bs = IsK(dtype) ? 256 : 32;
  for (int64_t t = 0; t < tokens; ++t) {
    float* xt = x.data() + t * cols;
    xt[(t * 29) % cols] = 20.0f * (t % 2 ? -1.0f : 1.0f);  // outlier, both signs
    if (cols >= 2 * bs && t % 3 == 1) std::fill(xt + bs, xt + 2 * bs, 0.0f);
    if (t % 3 == 2) {
      // Extreme of +-127 makes iscale (Q8_K) or 127/amax (Q8_0) exactly 1 or
      // -1: 2.5 and -3.5 are then exact ties.
      for (int j = 0; j < bs; ++j) xt[j] = std::clamp(xt[j], -100.0f, 100.0f);
      xt[0] = t % 2 ? 127.0f : -127.0f;
      xt[1] = 2.5f;
      xt[2] = -3.5f;
    }
  }
  return x;
}

std::vector<float> RunMatMul(const WeightMatrix& w, const std::vector<float>& x, int64_t tokens,
                             ThreadPool* pool = nullptr) {
  std::vector<float> y(tokens * w.rows, NAN);
  MatMul(w, x.data(), tokens, y.data(), pool);
  return y;
}

TEST(KQuantDTypeTest, BlockGeometryMatchesGgml) {
  EXPECT_EQ(BlockSize(DType::kQ4_0), 32);
  EXPECT_EQ(BlockBytes(DType::kQ4_0), 18u);
  for (DType t : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) EXPECT_EQ(BlockSize(t), 256);
  EXPECT_EQ(BlockBytes(DType::kQ4_K), 144u);
  EXPECT_EQ(BlockBytes(DType::kQ5_K), 176u);
  EXPECT_EQ(BlockBytes(DType::kQ6_K), 210u);
  EXPECT_EQ(RowBytes(DType::kQ6_K, 1536), 6u * 210u);
  EXPECT_EQ(RowBytes(DType::kQ4_0, 576), 18u * 18u);
  EXPECT_EQ(BlockSize(DType::kQ5_0), 32);
  EXPECT_EQ(BlockBytes(DType::kQ5_0), 22u);
  EXPECT_EQ(BlockBytes(DType::kQ5_1), 24u);
  EXPECT_STREQ(DTypeName(DType::kQ5_0), "Q5_0");
  EXPECT_STREQ(DTypeName(DType::kQ5_1), "Q5_1");
  EXPECT_STREQ(DTypeName(DType::kQ4_0), "Q4_0");
  EXPECT_STREQ(DTypeName(DType::kQ4_K), "Q4_K");
  EXPECT_STREQ(DTypeName(DType::kQ5_K), "Q5_K");
  EXPECT_STREQ(DTypeName(DType::kQ6_K), "Q6_K");
}

// On every ISA (AVX-512 has its own code), against the transcription of
// llama.cpp's quantize_row_q8_K; ties for the extreme pick the first.
TEST(QuantizeActivationRowQ8KTest, MatchesSpecTranscription) {
  const Isa active = ActiveIsa();
  for (Isa isa : SupportedIsas()) {
    ASSERT_TRUE(SetIsaForTesting(isa));
    std::mt19937 rng(31);
    constexpr int64_t kCols = 256 * 3;
    for (int trial = 0; trial < 60; ++trial) {
      std::vector<float> x = Activations(DType::kQ4_K, 1, kCols, rng);
      if (trial % 3 == 0) std::fill(x.begin() + 256, x.begin() + 512, 0.0f);
      if (trial % 3 == 1) {
        for (int j = 0; j < 256; ++j) x[j] = static_cast<float>(j % 40) - 19.5f;
        x[7] = trial % 2 ? -127.0f : 127.0f;
        x[200] = -x[7];  // a later extreme of the other sign loses the tie
      }
      const bool poisoned = trial % 5 == 4;
      if (poisoned) x[600] = trial % 2 ? NAN : -INFINITY;  // block 2
      std::vector<int8_t> q(kCols);
      std::vector<float> d(3);
      std::vector<int16_t> bsums(kCols / 16);
      QuantizeActivationRowQ8K(x.data(), kCols, q.data(), d.data(), bsums.data());
      // The reference only for the blocks it can transcribe (not the
      // poisoned one: rounding a NaN to int is undefined).
      const int64_t checked = poisoned ? 512 : kCols;
      const QuantRef ref = QuantizeRef(DType::kQ4_K, x.data(), checked);
      if (poisoned) {
        ASSERT_TRUE(std::isnan(d[2])) << IsaName(isa);
        for (int64_t i = 512; i < kCols; ++i) ASSERT_EQ(q[i], 0) << IsaName(isa);
        for (int64_t g = 32; g < kCols / 16; ++g) ASSERT_EQ(bsums[g], 0) << IsaName(isa);
      }
      for (int64_t i = 0; i < checked; ++i) {
        ASSERT_EQ(q[i], ref.q[i]) << IsaName(isa) << " trial " << trial << " i " << i;
      }
      for (int b = 0; b < checked / 256; ++b) {
        ASSERT_EQ(static_cast<double>(d[b]), ref.dq[256 * b]) << IsaName(isa) << " " << b;
      }
      for (int64_t g = 0; g < checked / 16; ++g) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += ref.q[16 * g + l];
        ASSERT_EQ(bsums[g], sum) << IsaName(isa) << " trial " << trial << " group " << g;
      }
      // The extreme maps to exactly -127: the sign of d carries the sign.
      for (int b = 0; b < checked / 256; ++b) {
        if (d[b] == 0.0f) continue;
        int qmin = 0;
        for (int j = 0; j < 256; ++j) qmin = std::min<int>(qmin, q[256 * b + j]);
        EXPECT_EQ(qmin, -127);
      }
    }
  }
  ASSERT_TRUE(SetIsaForTesting(active));
}

class KQuantTest : public IsaTest {};

TEST_P(KQuantTest, DequantizeRowMatchesFloat64Decoder) {
  std::mt19937 rng(32);
  for (DType dtype : kNewTypes) {
    const int64_t cols = IsK(dtype) ? 256 * 3 : 32 * 7;
    Weights ow = RandomQuantWeights(dtype, 5, cols, rng, 5);
    std::vector<float> out(cols);
    for (int64_t r = 0; r < 5; ++r) {
      DequantizeRow(ow.w, r, out.data());
      for (int64_t i = 0; i < cols; ++i) {
        // Scale products are exact in float (<= 24 significant bits), so the
        // only rounding is the final one (Q4_K/Q5_K: of scaled - offset).
        const double ref = DecodeRef(ow.w, r, i).value();
        ASSERT_EQ(out[i], static_cast<float>(ref))
            << DTypeName(dtype) << " row " << r << " col " << i;
      }
    }
  }
}

TEST_P(KQuantTest, MatMulMatchesEmulatedQuantisation) {
  std::mt19937 rng(33);
  for (DType dtype : kNewTypes) {
    for (int64_t rows : {1, 3, 17}) {
      for (int64_t k : {1, 2, 3, 5}) {
        const int64_t cols = IsK(dtype) ? 256 * k : 32 * (4 * k + 1);
        const int64_t tokens = 1 + rng() % 9;
        Weights ow = RandomQuantWeights(dtype, rows, cols, rng, rows % 2 ? 6 : 0);
        const std::vector<float> x = Activations(dtype, tokens, cols, rng);
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          const QuantRef qr = QuantizeRef(dtype, x.data() + t * cols, cols);
          for (int64_t o = 0; o < rows; ++o) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              const RefElem e = DecodeRef(ow.w, o, i);
              const double xq = qr.dq[i] * qr.q[i];
              if (HasMin(dtype)) {
                // The block minimum meets the block sum s, once per block.
                ref += e.scaled * xq;
                mag += std::fabs(e.scaled * xq);
                if (i % 32 == 0) {
                  ref -= e.offset * qr.s[i / 32];
                  mag += std::fabs(e.offset * qr.s[i / 32]);
                }
                continue;
              }
              ref += e.value() * xq;
              mag += (std::fabs(e.scaled) + std::fabs(e.offset)) * std::fabs(xq);
            }
            // The kernel's integer sums are exact; what remains are a few
            // float roundings per (super-)block and the float accumulation.
            ASSERT_NEAR(y[t * rows + o], ref, 1e-5 * mag + 1e-30)
                << DTypeName(dtype) << " rows=" << rows << " cols=" << cols << " t=" << t
                << " o=" << o;
          }
        }
      }
    }
  }
}

TEST_P(KQuantTest, MatMulMatchesUnquantisedFloat64WithinStepBound) {
  std::mt19937 rng(34);
  for (DType dtype : kNewTypes) {
    for (int64_t k : {1, 3}) {
      const int64_t cols = IsK(dtype) ? 256 * k : 32 * 9 * k;
      const int64_t rows = 13, tokens = 4;
      Weights ow = RandomQuantWeights(dtype, rows, cols, rng);
      const std::vector<float> x = Activations(dtype, tokens, cols, rng);
      const std::vector<float> y = RunMatMul(ow.w, x, tokens);
      double worst_ratio = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        const float* xt = x.data() + t * cols;
        const QuantRef qr = QuantizeRef(dtype, xt, cols);
        for (int64_t o = 0; o < rows; ++o) {
          // |y - W.x| <= sum |w_i| * |x_i - dq_i*q_i| + float rounding.
          double ref = 0, mag = 0, bound = 0;
          for (int64_t i = 0; i < cols; ++i) {
            const RefElem e = DecodeRef(ow.w, o, i);
            ref += e.value() * xt[i];
            mag += (std::fabs(e.scaled) + std::fabs(e.offset)) * std::fabs(xt[i]);
            if (!HasMin(dtype)) {
              bound += std::fabs(e.value()) * qr.step[i];
              continue;
            }
            // Q5_1: d*q meets the quantised x; m meets s, the block's sum of
            // quantised x rounded to f16, which is off from sum(x) by up to
            // 32 steps plus that rounding (relative 2^-11; 1e-3 covers it).
            bound += std::fabs(e.scaled) * qr.step[i];
            if (i % 32 == 0) {
              bound += std::fabs(e.offset) * (32.0 * qr.step[i] + 1e-3 * std::fabs(qr.s[i / 32]));
            }
          }
          bound += 2e-5 * mag;
          ASSERT_NEAR(y[t * rows + o], ref, bound)
              << DTypeName(dtype) << " cols=" << cols << " t=" << t << " o=" << o;
          worst_ratio = std::max(worst_ratio, std::fabs(y[t * rows + o] - ref) / bound);
        }
      }
      EXPECT_GT(worst_ratio, 1e-3) << DTypeName(dtype) << " bound is vacuous";
    }
  }
}

TEST_P(KQuantTest, ZeroActivationsGiveZero) {
  std::mt19937 rng(35);
  for (DType dtype : kNewTypes) {
    Weights ow = RandomQuantWeights(dtype, 4, 512, rng);
    const std::vector<float> zeros(512 * 2, 0.0f);
    for (float v : RunMatMul(ow.w, zeros, 2)) EXPECT_EQ(v, 0.0f) << DTypeName(dtype);
  }
}

TEST_P(KQuantTest, BatchInvariantAcrossTokenCountsAndThreads) {
  std::mt19937 rng(36);
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : {1, 2, 3}) pools.push_back(std::make_unique<ThreadPool>(n));
  constexpr int64_t kTokens = 80;
  for (DType dtype : kNewTypes) {
    const int64_t cols = IsK(dtype) ? 256 * 3 : 32 * 19;
    const int64_t rows = 37;
    Weights ow = RandomQuantWeights(dtype, rows, cols, rng);
    const std::vector<float> x = RandomVector(kTokens * cols, rng);
    std::vector<float> single(kTokens * rows);
    for (int64_t t = 0; t < kTokens; ++t) {
      MatMul(ow.w, x.data() + t * cols, 1, single.data() + t * rows, nullptr);
    }
    std::vector<float> y;
    // 70 tokens also takes the pool-parallel activation quantisation.
    for (int64_t batch : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 70}) {
      for (int64_t offset : {0, 3}) {
        for (auto& pool : pools) {
          y.assign(batch * rows, -1.0f);
          MatMul(ow.w, x.data() + offset * cols, batch, y.data(), pool.get());
          ASSERT_EQ(std::memcmp(y.data(), single.data() + offset * rows,
                                y.size() * sizeof(float)),
                    0)
              << DTypeName(dtype) << " batch=" << batch << " offset=" << offset
              << " threads=" << pool->size();
        }
      }
    }
  }
}

TEST_P(KQuantTest, MatMulSharedMatchesSeparateCallsBitwise) {
  std::mt19937 rng(37);
  ThreadPool pool(2);
  for (DType dtype : kNewTypes) {
    const int64_t cols = IsK(dtype) ? 512 : 96;
    Weights a = RandomQuantWeights(dtype, 21, cols, rng);
    Weights b = RandomQuantWeights(dtype, 9, cols, rng);
    const std::vector<float> x = RandomVector(5 * cols, rng);
    const std::vector<float> ya = RunMatMul(a.w, x, 5);
    const std::vector<float> yb = RunMatMul(b.w, x, 5);
    std::vector<float> sa(ya.size()), sb(yb.size());
    const WeightMatrix ws[2] = {a.w, b.w};
    float* ys[2] = {sa.data(), sb.data()};
    MatMulShared(ws, 2, x.data(), 5, ys, &pool);
    EXPECT_EQ(std::memcmp(sa.data(), ya.data(), ya.size() * sizeof(float)), 0) << DTypeName(dtype);
    EXPECT_EQ(std::memcmp(sb.data(), yb.data(), yb.size() * sizeof(float)), 0) << DTypeName(dtype);
  }
}

// As for Q8_0/Q4_1 (matmul_test): a NaN or infinity in a token's
// activations never comes out of Q4_0 or a K-quant as a finite number.
TEST_P(KQuantTest, NonFiniteActivationsNeverComeOutFinite) {
  std::mt19937 rng(92);
  for (DType dtype : kNewTypes) {
    const int64_t cols = 512;
    Weights ow = RandomQuantWeights(dtype, 7, cols, rng);
    for (int64_t tokens : {1, 16}) {
      for (float bad : {NAN, INFINITY, -INFINITY}) {
        std::vector<float> x = Activations(dtype, tokens, cols, rng);
        const int64_t poisoned = tokens - 1;
        x[poisoned * cols + 300] = bad;
        const std::vector<float> y = RunMatMul(ow.w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < ow.w.rows; ++o) {
            EXPECT_EQ(std::isfinite(y[t * ow.w.rows + o]), t != poisoned)
                << DTypeName(dtype) << " tokens " << tokens << " token " << t << " row " << o
                << " value " << bad;
          }
        }
      }
    }
  }
}

class KQuantSimdTest : public KQuantTest {};

// The super-block formats' SIMD kernels form the scalar kernel's integer
// sums and float operations, so unlike Q8_0/Q4_1 every ISA must give the
// scalar path's exact bits. (The 32-value formats' SIMD kernels accumulate
// in another float order: the float64 tests above check them on every ISA.)
TEST_P(KQuantSimdTest, EveryIsaGivesScalarBits) {
  std::mt19937 rng(38);
  for (DType dtype : kNewTypes) {
    if (!IsK(dtype)) continue;
    const int64_t cols = IsK(dtype) ? 512 : 224;
    Weights ow = RandomQuantWeights(dtype, 19, cols, rng);
    const std::vector<float> x = Activations(dtype, 13, cols, rng);
    const std::vector<float> isa = RunMatMul(ow.w, x, 13);
    ASSERT_TRUE(SetIsaForTesting(Isa::kScalar));
    const std::vector<float> scalar = RunMatMul(ow.w, x, 13);
    ASSERT_TRUE(SetIsaForTesting(GetParam()));
    EXPECT_EQ(std::memcmp(isa.data(), scalar.data(), isa.size() * sizeof(float)), 0)
        << DTypeName(dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KQuantTest, ::testing::ValuesIn(testing::AllIsas()),
                         testing::IsaParamName);
INSTANTIATE_TEST_SUITE_P(SimdIsas, KQuantSimdTest, ::testing::ValuesIn(testing::SimdIsas()),
                         testing::IsaParamName);

}  // namespace
}  // namespace tessera::kernels
