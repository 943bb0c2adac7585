// Small float vector primitives with a fixed reduction order per ISA, used by
// attention (q·k scores and the probability-weighted sum of V rows).
//
// Dot: scalar sums left to right; AVX2/AVX-512 use two vector accumulators
// over 2-vector steps, one more vector into the first, a zero-padded tail into
// the second, then a fixed horizontal sum. The order depends on n only.
//
// Same rules as matmul_internal.h for the per-ISA files: declarations only.
//
// Thread-safety: pure functions.
#ifndef TESSERA_KERNELS_CPU_VEC_OPS_H_
#define TESSERA_KERNELS_CPU_VEC_OPS_H_

#include <cstdint>

#include "kernels/cpu/isa.h"

namespace tessera::kernels::internal {

struct VecOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += alpha * x[i]
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // One (token, head) of causal attention over n cached positions whose K/V
  // rows are k_rows[p] / v_rows[p]: the exact steps of AttendGeneric (see
  // attention.cc) with this ISA's dot and axpy, fused so nothing is called
  // per position. probs has room for n floats. Null: use AttendGeneric.
  void (*attend)(const float* q, const float* const* k_rows, const float* const* v_rows,
                 int32_t n, int head_dim, float scale, float* probs, float* out);
  // y[i] = float(x[i]) for IEEE half x: exact, so every ISA agrees bitwise.
  void (*half_to_float)(const uint16_t* x, float* y, int64_t n);
  // `attend` for `group` (<= 64) consecutive queries q + g * head_dim that
  // share one KV head, with its K rows transposed in blocks of 16 positions:
  // position p's element d at kt[((p / 16) * head_dim + d) * 16 + p % 16]
  // (kt 64-byte aligned, blocks readable up to kt_stride positions, a
  // multiple of 16 and at least n). Outputs go to
  // out + g * head_dim; probs has room for group * kt_stride floats. Each
  // query's output is bitwise what `attend` gives it; scores are computed 16
  // positions at a time with positions in the lanes, and the group's V sums
  // run interleaved, which pays when many queries share the transposed rows
  // (prefill). Only for head_dim % 16 == 0. Null: this ISA has none.
  void (*attend_transposed)(const float* q, int group, const float* kt, int64_t kt_stride,
                            const float* const* v_rows, int32_t n, int head_dim, float scale,
                            float* probs, float* out);
};

const VecOps& VecOpsFor(Isa isa);

float DotAvx2(const float* a, const float* b, int64_t n);
void AxpyAvx2(float alpha, const float* x, float* y, int64_t n);
float DotAvx512(const float* a, const float* b, int64_t n);
void AxpyAvx512(float alpha, const float* x, float* y, int64_t n);
void HalfToFloatAvx2(const uint16_t* x, float* y, int64_t n);
void HalfToFloatAvx512(const uint16_t* x, float* y, int64_t n);
void AttendAvx512(const float* q, const float* const* k_rows, const float* const* v_rows,
                  int32_t n, int head_dim, float scale, float* probs, float* out);
void AttendTransposedAvx512(const float* q, int group, const float* kt, int64_t kt_stride,
                            const float* const* v_rows, int32_t n, int head_dim, float scale,
                            float* probs, float* out);

}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_VEC_OPS_H_
