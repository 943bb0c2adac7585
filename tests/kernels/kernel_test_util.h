// Shared helpers for the kernel tests: ISA parameterisation, random weights in
// each storage format written as raw bytes, and float64 decoders/rounders that
// are written independently of the library's own conversions.
#ifndef TESSERA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_
#define TESSERA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/isa.h"
#include "kernels/dtype.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"

namespace tessera::kernels::testing {

// Every ISA the library knows; tests skip the ones this CPU lacks.
std::vector<Isa> AllIsas();
// The SIMD ones (AllIsas less scalar), for tests that compare a SIMD path
// with the scalar baseline.
std::vector<Isa> SimdIsas();
std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info);

// Fixture base for tests parameterised by ISA: selects it in SetUp (or skips)
// and restores the previous one afterwards.
class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override;
  void TearDown() override;

 private:
  Isa saved_ = Isa::kScalar;
};

// Float64 decoders of the raw storage formats.
double HalfBitsToDouble(uint16_t h);
double Bf16BitsToDouble(uint16_t h);
// Rounds v to the nearest half / bfloat16 value (ties to even), in double.
double RoundToHalf(double v);
double RoundToBf16(double v);

// A weight matrix with owned storage.
struct OwnedWeights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

// Random weights of the given shape with typical magnitudes for each format.
// row_pad adds that many bytes of garbage after each row (row_bytes grows).
OwnedWeights RandomWeights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng,
                           size_t row_pad = 0);

// Element i of row `row`, decoded from the raw bytes in float64.
double WeightRef(const WeightMatrix& w, int64_t row, int64_t i);

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float stddev = 1.0f);

// Fills `rows` rows of a block-format matrix (row_bytes apart) with random
// bytes for the quants and packed scales, and random finite f16 scales (d,
// dmin, m) of moderate size at each format's offsets, so every value decodes
// finite. For tests that need arbitrary valid weights of a format.
void RandomizeQuantBlocks(DType dtype, uint8_t* data, int64_t rows, int64_t cols, size_t row_bytes,
                          std::mt19937& rng);

}  // namespace tessera::kernels::testing

#endif  // TESSERA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_
