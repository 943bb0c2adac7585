#include "tests/kernels/kernel_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace tessera::kernels::testing {
namespace {

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

void StoreU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }

// Random half bits with exponent field in [emin, emax] and either sign.
uint16_t RandomHalfBits(std::mt19937& rng, int emin, int emax, bool allow_negative) {
  std::uniform_int_distribution<int> exp(emin, emax);
  std::uniform_int_distribution<int> mant(0, 1023);
  uint16_t sign = 0;
  if (allow_negative && (rng() & 1)) sign = 0x8000;
  return static_cast<uint16_t>(sign | (exp(rng) << 10) | mant(rng));
}

}  // namespace

std::vector<Isa> AllIsas() { return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}; }
std::vector<Isa> SimdIsas() { return {Isa::kAvx2, Isa::kAvx512}; }

std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) {
  return IsaName(info.param);
}

void IsaTest::SetUp() {
  saved_ = ActiveIsa();
  if (!SetIsaForTesting(GetParam())) {
    GTEST_SKIP() << "this CPU cannot run ISA " << IsaName(GetParam());
  }
  std::printf("[   ISA    ] %s\n", IsaName(GetParam()));
}

void IsaTest::TearDown() { SetIsaForTesting(saved_); }

double HalfBitsToDouble(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  if (exp == 0) return sign * std::ldexp(static_cast<double>(mant), -24);
  if (exp == 31) return mant == 0 ? sign * INFINITY : NAN;
  return sign * std::ldexp(static_cast<double>(1024 + mant), exp - 25);
}

double Bf16BitsToDouble(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 7) & 0xFF;
  const int mant = h & 0x7F;
  if (exp == 0) return sign * std::ldexp(static_cast<double>(mant), -133);
  if (exp == 255) return mant == 0 ? sign * INFINITY : NAN;
  return sign * std::ldexp(static_cast<double>(128 + mant), exp - 134);
}

namespace {
// Rounds v to `mant_bits` significant bits (including the leading one) with
// exponent floor `min_exp` (exponent of the smallest normal), ties to even.
double RoundToFormat(double v, int mant_bits, int min_exp, double overflow) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return v;
  int e;
  std::frexp(v, &e);  // |v| = m * 2^e, m in [0.5, 1): leading bit is 2^(e-1)
  const int lead = std::max(e - 1, min_exp);
  const double ulp = std::ldexp(1.0, lead - (mant_bits - 1));
  const double r = std::nearbyint(v / ulp) * ulp;
  if (std::fabs(r) >= overflow) return v > 0 ? INFINITY : -INFINITY;
  return r;
}
}  // namespace

double RoundToHalf(double v) { return RoundToFormat(v, 11, -14, 65536.0); }
double RoundToBf16(double v) {
  return RoundToFormat(v, 8, -126, std::ldexp(1.0, 128));
}

OwnedWeights RandomWeights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng,
                           size_t row_pad) {
  OwnedWeights out;
  const size_t row_bytes = RowBytes(dtype, cols) + row_pad;
  out.bytes.resize(row_bytes * rows);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : out.bytes) b = static_cast<uint8_t>(byte(rng));  // padding stays garbage
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = out.bytes.data() + r * row_bytes;
    switch (dtype) {
      case DType::kF32:
        for (int64_t i = 0; i < cols; ++i) {
          const float f = normal(rng);
          std::memcpy(row + 4 * i, &f, 4);
        }
        break;
      case DType::kF16:
        // Exponent field 5..16: magnitudes 2^-10 .. 4, including rounding-
        // sensitive mantissas.
        for (int64_t i = 0; i < cols; ++i) StoreU16(row + 2 * i, RandomHalfBits(rng, 5, 16, true));
        break;
      case DType::kBF16:
        for (int64_t i = 0; i < cols; ++i) {
          const uint16_t sign = (rng() & 1) ? 0x8000 : 0;
          const int exp = std::uniform_int_distribution<int>(117, 128)(rng);
          StoreU16(row + 2 * i, static_cast<uint16_t>(sign | (exp << 7) | (rng() & 0x7F)));
        }
        break;
      case DType::kQ8_0:
        for (int64_t b = 0; b < cols / 32; ++b) {
          uint8_t* blk = row + 34 * b;
          // Scales 2^-12..2^-4 of either sign; quants cover the full int8
          // range including -128, which llama.cpp never writes but a file may.
          StoreU16(blk, RandomHalfBits(rng, 3, 11, true));
          for (int j = 0; j < 32; ++j) blk[2 + j] = static_cast<uint8_t>(byte(rng));
        }
        break;
      case DType::kQ4_1:
        for (int64_t b = 0; b < cols / 32; ++b) {
          uint8_t* blk = row + 20 * b;
          StoreU16(blk, RandomHalfBits(rng, 5, 12, false));      // d > 0
          StoreU16(blk + 2, RandomHalfBits(rng, 5, 14, true));   // min, either sign
          for (int j = 0; j < 16; ++j) blk[4 + j] = static_cast<uint8_t>(byte(rng));
        }
        break;
      case DType::kQ4_0:
      case DType::kQ5_0:
      case DType::kQ5_1:
      case DType::kIQ4_NL:
      case DType::kIQ4_XS:
      case DType::kQ2_K:
      case DType::kQ3_K:
      case DType::kQ4_K:
      case DType::kQ5_K:
      case DType::kQ6_K:
        // Generated and decoded by kquant_test.cc's own helpers.
        ADD_FAILURE() << "RandomWeights does not generate " << DTypeName(dtype);
        break;
    }
  }
  out.w.dtype = dtype;
  out.w.data = out.bytes.data();
  out.w.rows = rows;
  out.w.cols = cols;
  out.w.row_bytes = row_bytes;
  return out;
}

double WeightRef(const WeightMatrix& w, int64_t r, int64_t i) {
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
  switch (w.dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, row + 4 * i, 4);
      return f;
    }
    case DType::kF16:
      return HalfBitsToDouble(LoadU16(row + 2 * i));
    case DType::kBF16:
      return Bf16BitsToDouble(LoadU16(row + 2 * i));
    case DType::kQ8_0: {
      const uint8_t* blk = row + 34 * (i / 32);
      const int q = static_cast<int8_t>(blk[2 + i % 32]);
      return HalfBitsToDouble(LoadU16(blk)) * q;
    }
    case DType::kQ4_1: {
      const uint8_t* blk = row + 20 * (i / 32);
      const int j = i % 32;
      const int q = j < 16 ? (blk[4 + j] & 0x0F) : (blk[4 + j - 16] >> 4);
      return HalfBitsToDouble(LoadU16(blk)) * q + HalfBitsToDouble(LoadU16(blk + 2));
    }
    case DType::kQ4_0:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      ADD_FAILURE() << "WeightRef does not decode " << DTypeName(w.dtype);
      return NAN;
  }
  return 0;
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

namespace {

void StoreHalf(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

// Finite half bits with exponent field in [emin, emax], either sign.
uint16_t RandomHalf(std::mt19937& rng, int emin, int emax) {
  const int e = std::uniform_int_distribution<int>(emin, emax)(rng);
  return static_cast<uint16_t>(((rng() & 1) ? 0x8000 : 0) | (e << 10) | (rng() & 0x3FF));
}

}  // namespace

void RandomizeQuantBlocks(DType dtype, uint8_t* data, int64_t rows, int64_t cols, size_t row_bytes,
                          std::mt19937& rng) {
  for (size_t i = 0; i < row_bytes * rows; ++i) data[i] = static_cast<uint8_t>(rng());
  const int64_t blocks = cols / BlockSize(dtype);
  const size_t bb = BlockBytes(dtype);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* blk = data + r * row_bytes + b * bb;
      switch (dtype) {
        case DType::kQ8_0:
        case DType::kQ4_0:
        case DType::kQ5_0:
        case DType::kIQ4_NL:
          StoreHalf(blk, RandomHalf(rng, 3, 11));
          break;
        case DType::kIQ4_XS:
          StoreHalf(blk, RandomHalf(rng, 1, 8));  // d; scales stay random bytes
          break;
        case DType::kQ2_K:
          StoreHalf(blk + 80, RandomHalf(rng, 1, 9));  // d
          StoreHalf(blk + 82, RandomHalf(rng, 1, 9));  // dmin
          break;
        case DType::kQ3_K:
          StoreHalf(blk + 108, RandomHalf(rng, 1, 8));
          break;
        case DType::kQ4_1:
        case DType::kQ5_1:
          StoreHalf(blk, RandomHalf(rng, 3, 11));      // d
          StoreHalf(blk + 2, RandomHalf(rng, 3, 13));  // m, either sign
          break;
        case DType::kQ4_K:
        case DType::kQ5_K:
          StoreHalf(blk, RandomHalf(rng, 1, 9));      // d
          StoreHalf(blk + 2, RandomHalf(rng, 1, 9));  // dmin
          break;
        case DType::kQ6_K:
          StoreHalf(blk + 208, RandomHalf(rng, 1, 8));
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace tessera::kernels::testing
