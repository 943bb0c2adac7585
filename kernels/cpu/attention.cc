// Paged-KV causal attention. Work is split over (token, head) pairs; each pair
// is computed start to finish by one thread with the same steps whatever else
// is in the batch: scores = dot(q, k_p) * scale for p = 0..pos in order, max,
// e_p = exp(s_p - max) with their sum in double, probabilities e_p * (1/sum),
// then out = sum_p prob_p * v_p accumulated in position order.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/dtype.h"
#include "kernels/kernels.h"

namespace tessera::kernels {
namespace {

// Offset in elements of (position, KV head)'s row inside a layer's K or V.
int64_t KvRowOffset(const KvLayer& kv, const int32_t* block_table, int32_t pos, int kv_head) {
  const int64_t block = block_table[pos / kv.block_size];
  const int64_t slot = pos % kv.block_size;
  return ((block * kv.block_size + slot) * kv.n_kv_head + kv_head) * kv.head_dim;
}

// The reference steps for one (token, head); ISAs with a fused `attend`
// reproduce them exactly.
void AttendGeneric(const internal::VecOps& ops, const float* q, const float* const* k_rows,
                   const float* const* v_rows, int32_t n, int head_dim, float scale,
                   float* probs, float* out) {
  float max = -INFINITY;
  for (int32_t p = 0; p < n; ++p) {
    const float s = ops.dot(q, k_rows[p], head_dim) * scale;
    probs[p] = s;
    max = std::fmax(max, s);
  }
  double sum = 0.0;
  for (int32_t p = 0; p < n; ++p) {
    probs[p] = std::exp(probs[p] - max);
    sum += probs[p];
  }
  const float inv = static_cast<float>(1.0 / sum);
  std::memset(out, 0, sizeof(float) * head_dim);
  for (int32_t p = 0; p < n; ++p) ops.axpy(probs[p] * inv, v_rows[p], out, head_dim);
}

// Queries per KV head from which a call transposes K (below it the row
// kernel, with the same bits, is cheaper than the transposition).
constexpr int64_t kTransposeMinQueries = 8;
// Query heads one transposed call takes at most (its probs are this many rows).
constexpr int kMaxGroup = 8;

// A float buffer aligned for 512-bit loads, grown on demand.
class AlignedFloats {
 public:
  void Resize(size_t n) {
    if (n <= size_) return;
    data_.reset(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64)));
    size_ = n;
  }
  float* data() { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

// Blocks of 16 positions, each head_dim rows of 16 floats:
// kt[((p / 16) * head_dim + d) * 16 + p % 16] = rows[p][d]; positions
// n..stride-1 are zero. (One row per d over all positions would put a
// block's 16-float loads a whole row apart, onto a few L1 sets.)
void TransposeRows(const float* const* rows, int32_t n, int head_dim, int64_t stride, float* kt) {
  for (int64_t p0 = 0; p0 < stride; p0 += 16) {
    float* block = kt + p0 * head_dim;
    for (int64_t p = p0; p < p0 + 16; ++p) {
      if (p >= n) {
        for (int d = 0; d < head_dim; ++d) block[d * 16 + (p - p0)] = 0.0f;
        continue;
      }
      const float* row = rows[p];
      for (int d = 0; d < head_dim; ++d) block[d * 16 + (p - p0)] = row[d];
    }
  }
}

}  // namespace

void KvWrite(const KvLayer& kv, const int32_t* block_table, const int32_t* positions,
             int64_t tokens, const float* k_new, const float* v_new) {
  const int64_t width = static_cast<int64_t>(kv.n_kv_head) * kv.head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t pos = positions[t];
    const int64_t block = block_table[pos / kv.block_size];
    const int64_t offset = (block * kv.block_size + pos % kv.block_size) * width;
    if (kv.dtype == DType::kF16) {
      uint16_t* k = static_cast<uint16_t*>(kv.k) + offset;
      uint16_t* v = static_cast<uint16_t*>(kv.v) + offset;
      for (int64_t i = 0; i < width; ++i) {
        k[i] = F32ToF16(k_new[t * width + i]);
        v[i] = F32ToF16(v_new[t * width + i]);
      }
    } else {
      std::memcpy(static_cast<float*>(kv.k) + offset, k_new + t * width, sizeof(float) * width);
      std::memcpy(static_cast<float*>(kv.v) + offset, v_new + t * width, sizeof(float) * width);
    }
  }
}

void Attention(const float* q, const int32_t* positions, int64_t tokens, int n_head,
               const KvLayer& kv, const int32_t* block_table, float scale, float* out,
               ThreadPool* pool) {
  if (tokens <= 0 || n_head <= 0) return;
  const int head_dim = kv.head_dim;
  const int group = n_head / kv.n_kv_head;
  const internal::VecOps& ops = internal::VecOpsFor(ActiveIsa());

  // K/V row addresses per (KV head, position), resolved through the block
  // table once per call instead of once per (token, head, position). A half
  // cache is widened once per call into a float copy of just those rows; the
  // widening is exact, so the kernels below see the values the cache holds.
  int32_t max_n = 0;
  for (int64_t t = 0; t < tokens; ++t) max_n = std::max(max_n, positions[t] + 1);
  // With enough queries per KV head, K is transposed once per call (as
  // floats, 16 positions to a vector) and the ISA's transposed kernel scores
  // 16 positions at a time; its bits equal the row kernel's, so which path a
  // call takes does not show in its output. Memory: one float copy of the
  // call's K rows (as the half cache's widened copy already is).
  const bool transposed = ops.attend_transposed != nullptr && head_dim % 16 == 0 &&
                          tokens * group >= kTransposeMinQueries;
  const int64_t kt_stride = (static_cast<int64_t>(max_n) + 15) / 16 * 16;
  thread_local std::vector<const float*> rows;
  rows.resize(static_cast<size_t>(2) * kv.n_kv_head * max_n);
  const bool half = kv.dtype == DType::kF16;
  thread_local std::vector<float> widened;
  if (half) widened.resize(rows.size() * head_dim);
  thread_local AlignedFloats kt_buf;
  if (transposed) kt_buf.Resize(static_cast<size_t>(kv.n_kv_head) * head_dim * kt_stride);
  for (int h = 0; h < kv.n_kv_head; ++h) {
    const float** k_rows = rows.data() + static_cast<size_t>(2 * h) * max_n;
    const float** v_rows = k_rows + max_n;
    for (int32_t p = 0; p < max_n; ++p) {
      const int64_t offset = KvRowOffset(kv, block_table, p, h);
      if (half) {
        float* k = widened.data() + (static_cast<size_t>(2 * h) * max_n + p) * head_dim;
        float* v = k + static_cast<size_t>(max_n) * head_dim;
        ops.half_to_float(static_cast<const uint16_t*>(kv.k) + offset, k, head_dim);
        ops.half_to_float(static_cast<const uint16_t*>(kv.v) + offset, v, head_dim);
        k_rows[p] = k;
        v_rows[p] = v;
      } else {
        k_rows[p] = static_cast<const float*>(kv.k) + offset;
        v_rows[p] = static_cast<const float*>(kv.v) + offset;
      }
    }
    if (transposed) {
      TransposeRows(k_rows, max_n, head_dim, kt_stride,
                    kt_buf.data() + static_cast<size_t>(h) * head_dim * kt_stride);
    }
  }
  // Plain pointers: the body runs on pool threads, whose thread_locals differ.
  const float* const* all_rows = rows.data();
  const float* const kt = kt_buf.data();

  // Work items: (token, head), or with the transposed kernel (token, KV
  // head, run of up to kMaxGroup of its query heads), heads consecutive in q.
  const int runs = transposed ? (group + kMaxGroup - 1) / kMaxGroup : 0;
  auto body = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> probs;
    const size_t need = static_cast<size_t>(transposed ? std::min(group, kMaxGroup) : 1) * kt_stride;
    if (probs.size() < need) probs.resize(need);
    for (int64_t item = begin; item < end; ++item) {
      if (transposed) {
        const int64_t t = item / (kv.n_kv_head * runs);
        const int kv_head = static_cast<int>(item / runs % kv.n_kv_head);
        const int first = kv_head * group + static_cast<int>(item % runs) * kMaxGroup;
        const int count = std::min(kMaxGroup, (kv_head + 1) * group - first);
        const int64_t idx = t * n_head + first;
        const float* const* v_rows = all_rows + (static_cast<size_t>(2 * kv_head) + 1) * max_n;
        ops.attend_transposed(q + idx * head_dim, count,
                              kt + static_cast<size_t>(kv_head) * head_dim * kt_stride, kt_stride,
                              v_rows, positions[t] + 1, head_dim, scale, probs.data(),
                              out + idx * head_dim);
        continue;
      }
      const int64_t t = item / n_head;
      const int h = static_cast<int>(item % n_head);
      const float* const* k_rows = all_rows + static_cast<size_t>(2 * (h / group)) * max_n;
      const float* const* v_rows = k_rows + max_n;
      const int32_t n = positions[t] + 1;
      if (ops.attend != nullptr) {
        ops.attend(q + item * head_dim, k_rows, v_rows, n, head_dim, scale, probs.data(),
                   out + item * head_dim);
      } else {
        AttendGeneric(ops, q + item * head_dim, k_rows, v_rows, n, head_dim, scale,
                      probs.data(), out + item * head_dim);
      }
    }
  };
  const int64_t items = transposed ? tokens * kv.n_kv_head * runs : tokens * n_head;
  if (pool == nullptr || pool->size() == 1) {
    body(0, items);
  } else {
    pool->ParallelFor(items, 1, body);
  }
}

}  // namespace tessera::kernels
