// MatMul dispatch: quantises the activations once per call (block formats),
// then splits the weight rows across the pool. Every output element is
// computed by exactly one row kernel call, so the thread count never changes
// a result (see matmul_internal.h for the per-element order rule).
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/quantize.h"
#include "kernels/kernels.h"

namespace tessera::kernels {
namespace {

// Rows per ParallelFor grain: small enough to balance 2-16 threads on a
// 576-row matrix, large enough that per-chunk overhead is noise.
constexpr int64_t kRowGrain = 16;

// Reused across calls so a forward pass does not allocate per MatMul. Owned by
// the calling thread; workers only read it while that thread waits in
// ParallelFor.
struct ActivationScratch {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<float> s;
};

ActivationScratch& Scratch() {
  thread_local ActivationScratch scratch;
  return scratch;
}

using RowsFn = void (*)(const internal::MatMulArgs&, int64_t, int64_t);

RowsFn RowsKernelFor(Isa isa) {
#if defined(TESSERA_KERNELS_X86)
  switch (isa) {
    case Isa::kAvx512:
      return internal::MatMulRowsAvx512;
    case Isa::kAvx2:
      return internal::MatMulRowsAvx2;
    case Isa::kScalar:
      break;
  }
#endif
  return internal::MatMulRowsScalar;
}

bool IsBlockFormat(DType t) { return BlockSize(t) > 1; }

}  // namespace

void MatMul(const WeightMatrix& w, const float* x, int64_t tokens, float* y,
            ThreadPool* pool) {
  if (tokens <= 0 || w.rows <= 0) return;
  internal::MatMulArgs args;
  args.w = &w;
  args.x = x;
  args.tokens = tokens;
  args.y = y;
  if (w.cols == 0) {
    std::memset(y, 0, sizeof(float) * static_cast<size_t>(tokens * w.rows));
    return;
  }
  if (IsBlockFormat(w.dtype)) {
    assert(w.cols % kQuantBlock == 0);
    const int64_t nb = w.cols / kQuantBlock;
    const bool with_sums = w.dtype == DType::kQ4_1;
    ActivationScratch& s = Scratch();
    if (s.q.size() < static_cast<size_t>(tokens * w.cols)) s.q.resize(tokens * w.cols);
    if (s.d.size() < static_cast<size_t>(tokens * nb)) s.d.resize(tokens * nb);
    if (with_sums && s.s.size() < static_cast<size_t>(tokens * nb)) s.s.resize(tokens * nb);
    for (int64_t t = 0; t < tokens; ++t) {
      QuantizeActivationRow(x + t * w.cols, w.cols, s.q.data() + t * w.cols, s.d.data() + t * nb,
                            with_sums ? s.s.data() + t * nb : nullptr);
    }
    args.qx = {s.q.data(), s.d.data(), with_sums ? s.s.data() : nullptr, w.cols};
  }
  const RowsFn rows_fn = RowsKernelFor(ActiveIsa());
  if (pool == nullptr || pool->size() == 1) {
    rows_fn(args, 0, w.rows);
    return;
  }
  pool->ParallelFor(w.rows, kRowGrain,
                    [&](int64_t begin, int64_t end) { rows_fn(args, begin, end); });
}

void DequantizeRow(const WeightMatrix& w, int64_t row, float* out) {
  const auto* p = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * w.row_bytes;
  auto u16 = [](const uint8_t* q) {
    uint16_t v;
    std::memcpy(&v, q, sizeof(v));
    return v;
  };
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, p, sizeof(float) * static_cast<size_t>(w.cols));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < w.cols; ++i) out[i] = F16ToF32(u16(p + 2 * i));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < w.cols; ++i) out[i] = BF16ToF32(u16(p + 2 * i));
      return;
    case DType::kQ8_0:
      for (int64_t b = 0; b < w.cols / 32; ++b) {
        const uint8_t* blk = p + 34 * b;
        const float d = F16ToF32(u16(blk));
        const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
        for (int j = 0; j < 32; ++j) out[32 * b + j] = d * static_cast<float>(q[j]);
      }
      return;
    case DType::kQ4_1:
      for (int64_t b = 0; b < w.cols / 32; ++b) {
        const uint8_t* blk = p + 20 * b;
        const float d = F16ToF32(u16(blk));
        const float m = F16ToF32(u16(blk + 2));
        const uint8_t* qs = blk + 4;
        float* o = out + 32 * b;
        for (int j = 0; j < 16; ++j) {
          o[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
          o[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
        }
      }
      return;
  }
}

}  // namespace tessera::kernels
