// Per-token 8-bit quantisation of activations for the block-quantised MatMul.
//
// Each token's row of `cols` floats (cols a multiple of 32) becomes, per block
// of 32 values, int8 q in [-127, 127] with scale d, the way llama.cpp's x86
// path does it: amax = max|x|, d = amax/127, q = round_half_even(x * (127/amax)).
// d is stored rounded to f16 and back, as llama.cpp keeps it in its block_q8_0
// / block_q8_1 structs. For Q8_1 the block also keeps s = f16(d * sum(q)), the
// term that folds Q4_1's per-block minimum into one multiply.
//
// K-quant weights (Q4_K, Q5_K, Q6_K) take Q8_K activations instead, as
// llama.cpp's quantize_row_q8_K does: per block of 256, the value of largest
// magnitude `max` (the first one on ties) sets iscale = -127/max, q =
// min(127, round_half_even(iscale * x)), d = 1/iscale kept as float (no f16
// rounding), plus the 16 sums of q over each run of 16 (bsums).
//
// A block holding a NaN (Q8_1/Q8_0), or a NaN or infinity (Q8_K), gets
// d = NaN and q = 0, so the product is NaN: a numerical fault shows in the
// output (where the stages' guards catch it) instead of becoming plain int8
// values and finite, wrong results. Finite inputs are unaffected.
//
// Every operation here is exactly rounded, so the result is the same bits on
// every ISA and depends only on the token's own values.
//
// Thread-safety: pure functions.
#ifndef TESSERA_KERNELS_CPU_QUANTIZE_H_
#define TESSERA_KERNELS_CPU_QUANTIZE_H_

#include <cstdint>

namespace tessera::kernels {

inline constexpr int kQuantBlock = 32;

// Quantised activations of `tokens` tokens laid out as plain arrays: token t's
// values are q[t*cols ...], its block scales d[t*(cols/32) ...] and (Q8_1 only)
// its block sums s[t*(cols/32) ...].
struct QuantizedActivations {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* s = nullptr;
  int64_t cols = 0;
  // Q8_K only: bsums[t*(cols/16) ...]; d then has cols/256 entries per token.
  const int16_t* bsums = nullptr;
};

// Quantises one token x[0..cols) into q[0..cols), d[0..cols/32) and, when
// `s` is not null, s[0..cols/32) (Q8_1 style).
void QuantizeActivationRow(const float* x, int64_t cols, int8_t* q, float* d, float* s);

// Q8_K: quantises one token x[0..cols) (cols a multiple of 256) into
// q[0..cols), d[0..cols/256) and bsums[0..cols/16).
void QuantizeActivationRowQ8K(const float* x, int64_t cols, int8_t* q, float* d,
                              int16_t* bsums);

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_CPU_QUANTIZE_H_
