// MatMul dispatch: quantises the activations once per call (block formats;
// per token, so prefill-sized batches split it over the pool, and on AVX-512
// regrouped into 16-token tiles for the tile kernel), then splits the weight
// rows across the pool. Every output element is
// computed by exactly one row kernel call, so the thread count never changes
// a result (see matmul_internal.h for the per-element order rule).
#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_internal.h"
#include "kernels/cpu/quantize.h"
#include "kernels/kernels.h"

namespace tessera::kernels {
namespace {

// Rows per ParallelFor grain: small enough to balance 2-16 threads on a
// 576-row matrix, large enough that per-chunk overhead is noise.
constexpr int64_t kRowGrain = 16;

// Below this many tokens quantising is cheaper than waking the pool for it.
constexpr int64_t kParallelQuantizeTokens = 64;

// Reused across calls so a forward pass does not allocate per MatMul. Owned by
// the calling thread; workers touch it only while that thread waits in
// ParallelFor (writing disjoint tokens when quantising, then reading).
struct ActivationScratch {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<float> s;
  std::vector<uint8_t> tq;  // TiledActivations
  std::vector<float> td;
  std::vector<float> ts;
  std::vector<int16_t> bsums;  // Q8_K
  std::vector<int16_t> tbsums;  // Q8_K tiles
};

// Copies token t's quantised bytes (cols of them from `src`; null for a
// padding token) into its lane of the tile layout of matmul_internal.h: each
// tile's 16 tokens x 4 bytes of a column group are one 64-byte load for the
// tile kernel. Padding tokens get `pad`.
void TileBytes(const int8_t* src, int64_t cols, int64_t t, bool offset128, uint8_t* tq) {
  constexpr int kT = internal::kTileTokens;
  const int64_t nb = cols / kQuantBlock;
  const int64_t tile = t / kT;
  const int64_t j = t % kT;
  const uint8_t pad = offset128 ? 0x80 : 0x00;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* dst = tq + (tile * nb + b) * 8 * 64 + 4 * j;
    if (src == nullptr) {
      for (int g = 0; g < 8; ++g) std::memset(dst + g * 64, pad, 4);
      continue;
    }
    const auto* from = reinterpret_cast<const uint8_t*>(src + b * kQuantBlock);
    for (int g = 0; g < 8; ++g) {
      for (int k = 0; k < 4; ++k) dst[g * 64 + k] = static_cast<uint8_t>(from[4 * g + k] ^ pad);
    }
  }
}

// Token t of `qx` (32-value blocks) into the tile layout; tokens past the end
// (t >= tokens) get padding.
void TileToken(const QuantizedActivations& qx, int64_t t, int64_t tokens, bool offset128,
               ActivationScratch& s) {
  constexpr int kT = internal::kTileTokens;
  const int64_t nb = qx.cols / kQuantBlock;
  const int64_t tile = t / kT;
  const int64_t j = t % kT;
  const bool live = t < tokens;
  float* ts = qx.s != nullptr ? s.ts.data() : nullptr;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t base = tile * nb + b;
    s.td[base * kT + j] = live ? qx.d[t * nb + b] : 0.0f;
    if (ts != nullptr) ts[base * kT + j] = live ? qx.s[t * nb + b] : 0.0f;
  }
  TileBytes(live ? qx.q + t * qx.cols : nullptr, qx.cols, t, offset128, s.tq.data());
}

// Token t of Q8_K activations into the super-block tile layout: bytes as
// x + 128, the scale per super-block, the 16-value sums as int16 pairs.
void TileTokenQ8K(const QuantizedActivations& qx, int64_t t, int64_t tokens, ActivationScratch& s) {
  constexpr int kT = internal::kTileTokens;
  const int64_t nbk = qx.cols / kSuperBlock;
  const int64_t tile = t / kT;
  const int64_t j = t % kT;
  const bool live = t < tokens;
  for (int64_t b = 0; b < nbk; ++b) {
    const int64_t base = tile * nbk + b;
    s.td[base * kT + j] = live ? qx.d[t * nbk + b] : 0.0f;
    int16_t* dst = s.tbsums.data() + base * 256 + 2 * j;
    for (int p = 0; p < 8; ++p) {
      dst[32 * p] = live ? qx.bsums[(t * nbk + b) * 16 + 2 * p] : 0;
      dst[32 * p + 1] = live ? qx.bsums[(t * nbk + b) * 16 + 2 * p + 1] : 0;
    }
  }
  TileBytes(live ? qx.q + t * qx.cols : nullptr, qx.cols, t, true, s.tq.data());
}

// Sets args.xt's tile counts for `tokens` (AVX-512, enough tokens), or
// leaves it empty.
bool PlanTiles(int64_t tokens, internal::TiledActivations& xt) {
#if defined(TESSERA_KERNELS_X86)
  if (ActiveIsa() == Isa::kAvx512 && tokens >= internal::kTileMinTokens) {
    constexpr int kT = internal::kTileTokens;
    xt.tiles = tokens / kT + (tokens % kT >= internal::kTileMinTokens ? 1 : 0);
    xt.tile_tokens = std::min(tokens, xt.tiles * kT);
    return true;
  }
#endif
  return false;
}

// Most matrices MatMulShared takes at once (Q/K/V is the largest use).
constexpr size_t kMaxSharedMatrices = 8;

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

// Fills everything in `args` but w and y: for block formats, quantises the
// activations (and on AVX-512 tiles them) into the calling thread's scratch,
// which stays valid until that thread's next MatMul. The result depends only
// on w.dtype and w.cols, so matrices sharing both can share it.
void PrepareActivations(const WeightMatrix& w, const float* x, int64_t tokens,
                        ThreadPool* pool, internal::MatMulArgs& args) {
  args.x = x;
  args.tokens = tokens;
  if (!IsBlockFormat(w.dtype)) return;
  ActivationScratch& s = Scratch();
  if (IsKQuant(w.dtype)) {
    // Q8_K; on AVX-512 also tiled for the super-block tile kernel.
    assert(w.cols % kSuperBlock == 0);
    const int64_t nbk = w.cols / kSuperBlock;
    if (s.q.size() < static_cast<size_t>(tokens * w.cols)) s.q.resize(tokens * w.cols);
    if (s.d.size() < static_cast<size_t>(tokens * nbk)) s.d.resize(tokens * nbk);
    if (s.bsums.size() < static_cast<size_t>(tokens * nbk * 16)) s.bsums.resize(tokens * nbk * 16);
    args.qx = {s.q.data(), s.d.data(), nullptr, w.cols, s.bsums.data()};
    internal::TiledActivations& xt = args.xt;
    if (PlanTiles(tokens, xt)) {
      const size_t nq = static_cast<size_t>(xt.tiles * w.cols * internal::kTileTokens);
      const size_t nd = static_cast<size_t>(xt.tiles * nbk * internal::kTileTokens);
      if (s.tq.size() < nq) s.tq.resize(nq);
      if (s.td.size() < nd) s.td.resize(nd);
      if (s.tbsums.size() < nd * 16) s.tbsums.resize(nd * 16);
      xt.q = s.tq.data();
      xt.d = s.td.data();
      xt.bsums = s.tbsums.data();
    }
    const int64_t padded = std::max(tokens, xt.tiles * internal::kTileTokens);
    auto quantize = [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        if (t < tokens) {
          QuantizeActivationRowQ8K(x + t * w.cols, w.cols, s.q.data() + t * w.cols,
                                   s.d.data() + t * nbk, s.bsums.data() + t * nbk * 16);
        }
        if (t < xt.tiles * internal::kTileTokens) TileTokenQ8K(args.qx, t, tokens, s);
      }
    };
    if (pool != nullptr && pool->size() > 1 && tokens >= kParallelQuantizeTokens) {
      pool->ParallelFor(padded, internal::kTileTokens, quantize);
    } else {
      quantize(0, padded);
    }
    return;
  }
  assert(w.cols % kQuantBlock == 0);
  const int64_t nb = w.cols / kQuantBlock;
  const bool with_sums = w.dtype == DType::kQ4_1 || w.dtype == DType::kQ5_1;
  if (s.q.size() < static_cast<size_t>(tokens * w.cols)) s.q.resize(tokens * w.cols);
  if (s.d.size() < static_cast<size_t>(tokens * nb)) s.d.resize(tokens * nb);
  if (with_sums && s.s.size() < static_cast<size_t>(tokens * nb)) s.s.resize(tokens * nb);
  args.qx = {s.q.data(), s.d.data(), with_sums ? s.s.data() : nullptr, w.cols};
  // The tile kernel takes the signed-weight formats (Q8_0, Q4_0, Q5_0)
  // against x + 128; Q4_1 and Q5_1 against x.
  const bool offset128 = !with_sums;
  // Every 32-value block format has a tile kernel.
  internal::TiledActivations& xt = args.xt;
  if (PlanTiles(tokens, xt)) {
    const size_t nq = static_cast<size_t>(xt.tiles * nb * 8 * 64);
    const size_t nd = static_cast<size_t>(xt.tiles * nb * internal::kTileTokens);
    if (s.tq.size() < nq) s.tq.resize(nq);
    if (s.td.size() < nd) s.td.resize(nd);
    if (with_sums && s.ts.size() < nd) s.ts.resize(nd);
    xt.q = s.tq.data();
    xt.d = s.td.data();
    xt.s = with_sums ? s.ts.data() : nullptr;
  }
  // Quantisation is per token, so splitting tokens over threads cannot
  // change it; worth a ParallelFor only for prefill-sized batches.
  const int64_t padded = std::max(tokens, args.xt.tiles * internal::kTileTokens);
  auto quantize = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      if (t < tokens) {
        QuantizeActivationRow(x + t * w.cols, w.cols, s.q.data() + t * w.cols,
                              s.d.data() + t * nb, with_sums ? s.s.data() + t * nb : nullptr);
      }
      if (t < args.xt.tiles * internal::kTileTokens) {
        TileToken(args.qx, t, tokens, offset128, s);
      }
    }
  };
  if (pool != nullptr && pool->size() > 1 && tokens >= kParallelQuantizeTokens) {
    pool->ParallelFor(padded, internal::kTileTokens, quantize);
  } else {
    quantize(0, padded);
  }
}

}  // namespace

void MatMul(const WeightMatrix& w, const float* x, int64_t tokens, float* y,
            ThreadPool* pool) {
  if (tokens <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {
    std::memset(y, 0, sizeof(float) * static_cast<size_t>(tokens * w.rows));
    return;
  }
  internal::MatMulArgs args;
  PrepareActivations(w, x, tokens, pool, args);
  args.w = &w;
  args.y = y;
  const RowsFn rows_fn = RowsKernelFor(ActiveIsa());
  if (pool == nullptr || pool->size() == 1) {
    rows_fn(args, 0, w.rows);
    return;
  }
  pool->ParallelFor(w.rows, kRowGrain,
                    [&](int64_t begin, int64_t end) { rows_fn(args, begin, end); });
}

void MatMulShared(const WeightMatrix* ws, size_t count, const float* x, int64_t tokens,
                  float* const* ys, ThreadPool* pool) {
  if (tokens <= 0 || count == 0) return;
  bool shareable = count <= kMaxSharedMatrices && ws[0].cols > 0;
  for (size_t i = 1; i < count && shareable; ++i) {
    shareable = ws[i].dtype == ws[0].dtype && ws[i].cols == ws[0].cols;
  }
  if (!shareable) {
    for (size_t i = 0; i < count; ++i) MatMul(ws[i], x, tokens, ys[i], pool);
    return;
  }
  // One args per matrix, all pointing at the same prepared activations, and
  // the concatenated row space [0, total) with row_start[i] where matrix i
  // begins. Each row still goes through the same rows_fn as in MatMul, and
  // no kernel's result depends on which other rows share its call.
  internal::MatMulArgs args[kMaxSharedMatrices];
  int64_t row_start[kMaxSharedMatrices + 1];
  PrepareActivations(ws[0], x, tokens, pool, args[0]);
  row_start[0] = 0;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) args[i] = args[0];
    args[i].w = &ws[i];
    args[i].y = ys[i];
    row_start[i + 1] = row_start[i] + std::max<int64_t>(ws[i].rows, 0);
  }
  const int64_t total = row_start[count];
  if (total == 0) return;
  const RowsFn rows_fn = RowsKernelFor(ActiveIsa());
  auto run = [&](int64_t begin, int64_t end) {
    for (size_t i = 0; i < count; ++i) {
      const int64_t lo = std::max(begin, row_start[i]);
      const int64_t hi = std::min(end, row_start[i + 1]);
      if (lo < hi) rows_fn(args[i], lo - row_start[i], hi - row_start[i]);
    }
  };
  if (pool == nullptr || pool->size() == 1) {
    run(0, total);
    return;
  }
  pool->ParallelFor(total, kRowGrain, run);
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
    case DType::kQ4_0:
      return internal::DequantizeRowQ4_0(p, w.cols, out);
    case DType::kQ5_0:
      return internal::DequantizeRowQ5_0(p, w.cols, out);
    case DType::kQ5_1:
      return internal::DequantizeRowQ5_1(p, w.cols, out);
    case DType::kIQ4_NL:
      return internal::DequantizeRowIq4Nl(p, w.cols, out);
    case DType::kIQ4_XS:
      return internal::DequantizeRowIq4Xs(p, w.cols, out);
    case DType::kQ2_K:
      return internal::DequantizeRowQ2_K(p, w.cols, out);
    case DType::kQ3_K:
      return internal::DequantizeRowQ3_K(p, w.cols, out);
    case DType::kQ4_K:
      return internal::DequantizeRowQ4_K(p, w.cols, out);
    case DType::kQ5_K:
      return internal::DequantizeRowQ5_K(p, w.cols, out);
    case DType::kQ6_K:
      return internal::DequantizeRowQ6_K(p, w.cols, out);
  }
}

}  // namespace tessera::kernels
