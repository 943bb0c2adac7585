// Paged-KV causal attention. Work is split over (token, head) pairs; each pair
// is computed start to finish by one thread with the same steps whatever else
// is in the batch: scores = dot(q, k_p) * scale for p = 0..pos in order, max,
// e_p = exp(s_p - max) with their sum in double, probabilities e_p * (1/sum),
// then out = sum_p prob_p * v_p accumulated in position order.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/kernels.h"

namespace tessera::kernels {
namespace {

const float* KvRow(const float* base, const KvLayer& kv, const int32_t* block_table, int32_t pos,
                   int kv_head) {
  const int64_t block = block_table[pos / kv.block_size];
  const int64_t slot = pos % kv.block_size;
  return base + ((block * kv.block_size + slot) * kv.n_kv_head + kv_head) * kv.head_dim;
}

}  // namespace

void KvWrite(const KvLayer& kv, const int32_t* block_table, const int32_t* positions,
             int64_t tokens, const float* k_new, const float* v_new) {
  const int64_t width = static_cast<int64_t>(kv.n_kv_head) * kv.head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t pos = positions[t];
    const int64_t block = block_table[pos / kv.block_size];
    const int64_t offset = (block * kv.block_size + pos % kv.block_size) * width;
    std::memcpy(kv.k + offset, k_new + t * width, sizeof(float) * width);
    std::memcpy(kv.v + offset, v_new + t * width, sizeof(float) * width);
  }
}

void Attention(const float* q, const int32_t* positions, int64_t tokens, int n_head,
               const KvLayer& kv, const int32_t* block_table, float scale, float* out,
               ThreadPool* pool) {
  if (tokens <= 0 || n_head <= 0) return;
  const int head_dim = kv.head_dim;
  const int group = n_head / kv.n_kv_head;
  const internal::VecOps& ops = internal::VecOpsFor(ActiveIsa());

  auto body = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> probs;
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t t = idx / n_head;
      const int h = static_cast<int>(idx % n_head);
      const int kv_head = h / group;
      const float* qv = q + idx * head_dim;
      float* o = out + idx * head_dim;
      const int32_t n = positions[t] + 1;
      probs.resize(static_cast<size_t>(n));

      float max = -INFINITY;
      for (int32_t p = 0; p < n; ++p) {
        const float s = ops.dot(qv, KvRow(kv.k, kv, block_table, p, kv_head), head_dim) * scale;
        probs[p] = s;
        max = std::fmax(max, s);
      }
      double sum = 0.0;
      for (int32_t p = 0; p < n; ++p) {
        probs[p] = std::exp(probs[p] - max);
        sum += probs[p];
      }
      const float inv = static_cast<float>(1.0 / sum);
      std::memset(o, 0, sizeof(float) * head_dim);
      for (int32_t p = 0; p < n; ++p) {
        ops.axpy(probs[p] * inv, KvRow(kv.v, kv, block_table, p, kv_head), o, head_dim);
      }
    }
  };
  const int64_t items = tokens * n_head;
  if (pool == nullptr || pool->size() == 1) {
    body(0, items);
  } else {
    pool->ParallelFor(items, 1, body);
  }
}

}  // namespace tessera::kernels
