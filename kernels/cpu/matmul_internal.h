// Internal contract between matmul.cc (dispatch, activation quantisation,
// threading) and the per-ISA row kernels (matmul_{scalar,avx2,avx512}.cc).
//
// A row kernel computes y[t*rows + o] for o in [row_begin, row_end) and every
// token t. Batch invariance rests on one rule every kernel follows: the
// operations that produce y[t][o] (which blocks or lanes are combined, in which
// order, with which multiply/FMA/add) depend only on the weight shape, never on
// `tokens`, on t, or on the row range. Kernels may process several tokens at
// once to reuse unpacked weights, but each token's accumulator then sees the
// same instruction sequence as when it is processed alone.
//
// The per-ISA files are compiled with wider -m flags than the rest of the
// library. They must not define inline functions or templates that other
// files also instantiate (the linker could keep their AVX copy), so this header
// holds only plain declarations.
//
// Thread-safety: row kernels are pure; disjoint row ranges may run in parallel.
#ifndef TESSERA_KERNELS_CPU_MATMUL_INTERNAL_H_
#define TESSERA_KERNELS_CPU_MATMUL_INTERNAL_H_

#include <cstdint>

#include "kernels/cpu/quantize.h"
#include "kernels/kernels.h"

namespace tessera::kernels::internal {

struct MatMulArgs {
  const WeightMatrix* w = nullptr;
  const float* x = nullptr;           // float formats: x[tokens][cols]
  QuantizedActivations qx;            // block formats
  int64_t tokens = 0;
  float* y = nullptr;                 // y[tokens][rows]
};

// Tokens a kernel processes together against one weight row.
inline constexpr int kTokenGroup = 4;

void MatMulRowsScalar(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
void MatMulRowsAvx2(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
void MatMulRowsAvx512(const MatMulArgs& args, int64_t row_begin, int64_t row_end);

}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_MATMUL_INTERNAL_H_
