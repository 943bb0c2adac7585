// Internal contract between matmul.cc (dispatch, activation quantisation,
// threading) and the per-ISA row kernels (matmul_{scalar,avx2,avx512}.cc,
// superblock_avx2.cc; their shared row loop is row_groups.h).
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

// Tokens per tile of the AVX-512 tile kernel, one per 32-bit lane.
inline constexpr int kTileTokens = 16;
// The fewest tokens worth a (zero-padded) tile; fewer go through row kernels.
// Measured: 8 tokens in a tile run slower than as two 4-token row groups
// (docs/perf.md, CPU speed).
inline constexpr int kTileMinTokens = 12;

// Quantised activations of block formats regrouped for the tile kernel: tile
// T holds tokens 16T..16T+15 and, for block b and 4-byte group g (columns
// 32b+4g..32b+4g+3), 64 bytes q[((T*nb + b)*8 + g)*64 + 4j + k] = byte k of
// token j's group. For Q8_0 the bytes are x + 128 (so VNNI can take them as
// the unsigned operand); for Q4_1 they are x. Scales and sums are transposed
// the same way: d[(T*nb + b)*16 + j], s likewise (Q4_1 only). Q4_0 tiles as
// Q8_0 (x + 128): its weights are unpacked to signed bytes. Lanes of tokens
// past the end hold zeros (x + 128 = 128 for Q8_0) and are never stored.
// The super-block formats tile Q8_K activations the same way: q holds x + 128
// in the layout above (so super-block b's 64 groups are the 4096 bytes from
// ((T*nbk + b)*4096), d one scale per super-block, d[(T*nbk + b)*16 + j],
// and bsums the 16-value sums as int16 pairs, bsums[(T*nbk + b)*256 + 32p +
// 2j + h] = sum of sub-block 2p + h of token j.
struct TiledActivations {
  const uint8_t* q = nullptr;
  const float* d = nullptr;
  const float* s = nullptr;
  const int16_t* bsums = nullptr;
  int64_t tiles = 0;
  int64_t tile_tokens = 0;  // tokens [0, tile_tokens) are computed by tiles
};

struct MatMulArgs {
  const WeightMatrix* w = nullptr;
  const float* x = nullptr;           // float formats: x[tokens][cols]
  QuantizedActivations qx;            // block formats
  TiledActivations xt;                // block formats on AVX-512, tokens >= kTileMinTokens
  int64_t tokens = 0;
  float* y = nullptr;                 // y[tokens][rows]
};

// Tokens a kernel processes together against one weight row.
inline constexpr int kTokenGroup = 4;

// The f16 at `p` (unaligned) as a float, for the scalar block kernels.
float F16At(const uint8_t* p);

// Q4_0 and K-quant formats (kquants.cc): the scalar kernels, whose bits the
// K-quants' SIMD kernels reproduce (superblock_avx2.cc,
// superblock_tiles_avx512.cc).
// Dot products take one token's quantised activations: Q8_0 blocks for Q4_0
// (nb blocks of 32), Q8_K for the K-quants (nbk super-blocks of 256).
void DequantizeRowQ4_0(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowQ4_K(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowQ5_K(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowQ6_K(const uint8_t* row, int64_t cols, float* out);
float DotQ4_0(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb);
float DotQ4_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk);
float DotQ5_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk);
float DotQ6_K(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk);

// Q5_0 and Q5_1 (q5_quants.cc): scalar only, shared by every ISA. Q5_0 takes
// Q8_0 activation blocks, Q5_1 Q8_1 ones (with the sums sx).
void DequantizeRowQ5_0(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowQ5_1(const uint8_t* row, int64_t cols, float* out);
float DotQ5_0(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb);
float DotQ5_1(const uint8_t* row, const int8_t* q, const float* dx, const float* sx,
              int64_t nb);

// IQ4_NL and IQ4_XS (iq4_quants.cc): IQ4_NL takes Q8_0 activation blocks,
// IQ4_XS Q8_K super-blocks.
void DequantizeRowIq4Nl(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowIq4Xs(const uint8_t* row, int64_t cols, float* out);
float DotIq4Nl(const uint8_t* row, const int8_t* q, const float* dx, int64_t nb);
float DotIq4Xs(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk);

// Q2_K and Q3_K (low_bit_kquants.cc): scalar only, shared by every ISA, on
// Q8_K activations.
void DequantizeRowQ2_K(const uint8_t* row, int64_t cols, float* out);
void DequantizeRowQ3_K(const uint8_t* row, int64_t cols, float* out);
float DotQ2_K(const uint8_t* row, const int8_t* q, const float* dx, const int16_t* bsums,
              int64_t nbk);
float DotQ3_K(const uint8_t* row, const int8_t* q, const float* dx, int64_t nbk);
// Q3_K's sixteen 6-bit scales of a super-block (its 12 packed bytes), minus
// 32, as llama.cpp unpacks them (the SIMD kernels call it too).
void UnpackQ3Scales(const uint8_t* packed, int* scales);

// The AVX-512 parts of quantize.cc (quantize_avx512.cc), bitwise its scalar
// code: per 32-value block, q, amax (NaN if the block has a NaN; q then 0)
// and, when sum_out is not null, sum(q) as a float; and all of Q8_K.
void QuantizeBlocksAvx512(const float* x, int64_t nb, int8_t* q, float* amax_out, float* sum_out);
void QuantizeRowQ8KAvx512(const float* x, int64_t cols, int8_t* q, float* d, int16_t* bsums);

void MatMulRowsScalar(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
void MatMulRowsAvx2(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
void MatMulRowsAvx512(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
// The super-block formats (Q2_K to Q6_K, IQ4_XS) on AVX2 (superblock_avx2.cc),
// with the scalar kernels' bits; both SIMD dispatchers call it.
void MatMulRowsSuperBlockAvx2(const MatMulArgs& args, int64_t row_begin, int64_t row_end);
// Their AVX-512 tile kernel (superblock_tiles_avx512.cc): tokens
// [0, args.xt.tile_tokens), with the scalar kernels' bits.
void SuperBlockTilesAvx512(const MatMulArgs& args, int64_t row_begin, int64_t row_end);

}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_MATMUL_INTERNAL_H_
