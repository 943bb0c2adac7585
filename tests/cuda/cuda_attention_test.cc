// KvWrite and causal paged attention on the GPU against the CPU kernels:
// f32 and f16 caches, decode (one token) and prefill chunks, grouped-query
// heads, shuffled block tables, and the batched form that mixes sequences.
//
// Tolerances: the written cache is bitwise the CPU's (f16 rounding is round
// to nearest even on both sides). Attention outputs are convex combinations
// of V rows with V ~ N(0, 1): per element |gpu - cpu| / max(1, |cpu|) < 1e-5.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_test_util.h"

namespace tessera::cuda_test {
namespace {

using kernels::DType;
using kernels::KvLayer;
using kernels::cuda::DeviceBuffer;

struct Geometry {
  int n_head, n_kv_head, head_dim;
  DType dtype;
};

// A host cache and its device twin, with the same geometry.
struct Caches {
  std::vector<uint8_t> host_k, host_v;
  DeviceBuffer dev_k, dev_v;
  KvLayer host, dev;
};

constexpr int kBlockSize = 16;
constexpr int64_t kBlocks = 64;

absl::StatusOr<Caches> MakeCaches(const Geometry& g, int64_t blocks = kBlocks) {
  Caches c;
  const size_t elem = g.dtype == DType::kF16 ? 2 : 4;
  const size_t bytes = static_cast<size_t>(blocks) * kBlockSize * g.n_kv_head * g.head_dim * elem;
  // Nonzero garbage so that a read of an unwritten slot shows up.
  c.host_k.assign(bytes, 0x3c);
  c.host_v.assign(bytes, 0x3c);
  auto k = ToDevice(c.host_k);
  if (!k.ok()) return k.status();
  auto v = ToDevice(c.host_v);
  if (!v.ok()) return v.status();
  c.dev_k = *std::move(k);
  c.dev_v = *std::move(v);
  for (KvLayer* l : {&c.host, &c.dev}) {
    l->dtype = g.dtype;
    l->num_blocks = blocks;
    l->block_size = kBlockSize;
    l->n_kv_head = g.n_kv_head;
    l->head_dim = g.head_dim;
  }
  c.host.k = c.host_k.data();
  c.host.v = c.host_v.data();
  c.dev.k = c.dev_k.data();
  c.dev.v = c.dev_v.data();
  return c;
}

std::vector<float> Random(size_t n, std::mt19937_64& rng, float stddev = 1.0f) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Runs one sequence through chunks (prefill pieces then decode steps) on both
// sides, comparing the attention output of every chunk and the final cache.
void CheckSequence(const Geometry& g, const std::vector<int>& chunks, uint64_t seed) {
  std::mt19937_64 rng(CaseSeed(seed));
  CUDA_TEST_ASSIGN_OR_FAIL(Caches c, MakeCaches(g));
  std::vector<int32_t> table(kBlocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dtable, ToDevice(table));
  const int64_t q_dim = int64_t{g.n_head} * g.head_dim, kv_dim = int64_t{g.n_kv_head} * g.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
  int32_t pos = 0;
  for (int n : chunks) {
    std::vector<int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), pos);
    std::vector<float> q = Random(n * q_dim, rng, 2.0f), k = Random(n * kv_dim, rng),
                       v = Random(n * kv_dim, rng);
    kernels::KvWrite(c.host, table.data(), positions.data(), n, k.data(), v.data());
    std::vector<float> cpu(n * q_dim);
    kernels::Attention(q.data(), positions.data(), n, g.n_head, c.host, table.data(), scale,
                       cpu.data(), nullptr);

    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dpos, ToDevice(positions));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dq, ToDevice(q));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dk, ToDevice(k));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dv, ToDevice(v));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dout, DeviceBuffer::Allocate(cpu.size() * 4));
    CUDA_TEST_ASSERT_OK(kernels::cuda::KvWrite(c.dev, dtable.as<int32_t>(), dpos.as<int32_t>(), n,
                                               dk.as<float>(), dv.as<float>(), nullptr));
    CUDA_TEST_ASSERT_OK(kernels::cuda::Attention(dq.as<float>(), dpos.as<int32_t>(), n, g.n_head,
                                                 c.dev, dtable.as<int32_t>(), scale,
                                                 dout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dout, cpu.size()));
    const double err = MaxElementRelativeError(gpu, cpu);
    CUDA_TEST_CHECK(err < 1e-5, "%s heads %d/%d dim %d, chunk of %d at %d: %.3e",
                    kernels::DTypeName(g.dtype), g.n_head, g.n_kv_head, g.head_dim, n, pos, err);
    pos += n;
  }
  CUDA_TEST_ASSIGN_OR_FAIL(std::vector<uint8_t> gpu_k, ToHost<uint8_t>(c.dev_k, c.host_k.size()));
  CUDA_TEST_ASSIGN_OR_FAIL(std::vector<uint8_t> gpu_v, ToHost<uint8_t>(c.dev_v, c.host_v.size()));
  CUDA_TEST_CHECK(gpu_k == c.host_k && gpu_v == c.host_v, "%s cache differs from the CPU's",
                  kernels::DTypeName(g.dtype));
  std::printf("  %s heads %d/%d head_dim %d, %zu chunks to position %d: OK\n",
              kernels::DTypeName(g.dtype), g.n_head, g.n_kv_head, g.head_dim, chunks.size(), pos);
}

void SingleSequenceMatchesCpu() {
  const std::vector<Geometry> geometries = {{9, 3, 64, DType::kF32},  {9, 3, 64, DType::kF16},
                                            {32, 8, 128, DType::kF32}, {32, 8, 128, DType::kF16},
                                            {4, 4, 80, DType::kF32},   {6, 1, 256, DType::kF16}};
  uint64_t seed = 500;
  for (const Geometry& g : geometries) {
    // Prefill in uneven chunks crossing block boundaries, then decode steps.
    CheckSequence(g, {37, 1, 16, 90, 1, 1, 1, 300, 1}, seed++);
    CheckSequence(g, {1, 1, 1, 1, 1}, seed++);
  }
}

// Three sequences in one KvWriteBatch + AttentionBatch call; each token's
// output must equal the CPU's single-sequence result.
void BatchedStepMatchesPerSequenceCpu() {
  for (DType dtype : {DType::kF32, DType::kF16}) {
    const Geometry g{32, 8, 128, dtype};
    std::mt19937_64 rng(CaseSeed(900 + static_cast<int>(dtype)));
    CUDA_TEST_ASSIGN_OR_FAIL(Caches c, MakeCaches(g));
    std::vector<int32_t> ids(kBlocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    // Sequence s owns blocks [20 s, 20 s + 20) of the shuffled pool.
    const int seqs = 3;
    const int prior[seqs] = {0, 50, 200};  // positions already cached
    const int step[seqs] = {1, 7, 1};      // tokens in this step
    const int64_t q_dim = int64_t{g.n_head} * g.head_dim, kv_dim = int64_t{g.n_kv_head} * g.head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
    std::vector<int32_t> tables, offsets, positions;
    std::vector<float> q_all, k_all, v_all, cpu_all;
    for (int s = 0; s < seqs; ++s) {
      const int32_t* table = ids.data() + 20 * s;
      // History: written by the CPU oracle on the host cache and mirrored.
      if (prior[s] > 0) {
        std::vector<int32_t> hist(prior[s]);
        std::iota(hist.begin(), hist.end(), 0);
        std::vector<float> k = Random(prior[s] * kv_dim, rng), v = Random(prior[s] * kv_dim, rng);
        kernels::KvWrite(c.host, table, hist.data(), prior[s], k.data(), v.data());
      }
      for (int i = 0; i < step[s]; ++i) {
        positions.push_back(prior[s] + i);
        offsets.push_back(static_cast<int32_t>(tables.size()));
      }
      tables.insert(tables.end(), table, table + 20);
    }
    // Copy the host history to the device cache.
    CUDA_TEST_ASSERT_OK(CopyToDevice(c.host_k.data(), c.host_k.size(), c.dev_k.data()));
    CUDA_TEST_ASSERT_OK(CopyToDevice(c.host_v.data(), c.host_v.size(), c.dev_v.data()));
    const int64_t tokens = positions.size();
    q_all = Random(tokens * q_dim, rng, 2.0f);
    k_all = Random(tokens * kv_dim, rng);
    v_all = Random(tokens * kv_dim, rng);
    cpu_all.resize(tokens * q_dim);
    int64_t t = 0;
    for (int s = 0; s < seqs; ++s) {
      const int32_t* table = ids.data() + 20 * s;
      kernels::KvWrite(c.host, table, &positions[t], step[s], &k_all[t * kv_dim],
                       &v_all[t * kv_dim]);
      kernels::Attention(&q_all[t * q_dim], &positions[t], step[s], g.n_head, c.host, table,
                         scale, &cpu_all[t * q_dim], nullptr);
      t += step[s];
    }
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dtables, ToDevice(tables));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer doffsets, ToDevice(offsets));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dpos, ToDevice(positions));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dq, ToDevice(q_all));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dk, ToDevice(k_all));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dv, ToDevice(v_all));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dout, DeviceBuffer::Allocate(cpu_all.size() * 4));
    CUDA_TEST_ASSERT_OK(kernels::cuda::KvWriteBatch(c.dev, dtables.as<int32_t>(),
                                                    doffsets.as<int32_t>(), dpos.as<int32_t>(),
                                                    tokens, dk.as<float>(), dv.as<float>(),
                                                    nullptr));
    CUDA_TEST_ASSERT_OK(kernels::cuda::AttentionBatch(
        dq.as<float>(), dpos.as<int32_t>(), tokens, g.n_head, c.dev, dtables.as<int32_t>(),
        doffsets.as<int32_t>(), scale, dout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dout, cpu_all.size()));
    CUDA_TEST_CHECK(MaxElementRelativeError(gpu, cpu_all) < 1e-5, "%s batched: %.3e",
                    kernels::DTypeName(dtype), MaxElementRelativeError(gpu, cpu_all));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<uint8_t> gpu_k, ToHost<uint8_t>(c.dev_k, c.host_k.size()));
    CUDA_TEST_CHECK(gpu_k == c.host_k, "%s batched cache differs", kernels::DTypeName(dtype));
  }
}

// The split ("flash decoding") kernel for decode steps: three sequences of
// 5, 300 and 1100 cached positions (1, 5 and the maximum 16 chunks) decode
// one token each. Each output matches the CPU's, and equals bitwise what the
// token gets decoded alone.
void DecodeSplitMatchesCpuAndIsBatchInvariant() {
  constexpr int64_t kPool = 160;
  for (const Geometry& g : std::vector<Geometry>{{32, 8, 128, DType::kF32},
                                                 {32, 8, 128, DType::kF16},
                                                 {9, 3, 64, DType::kF32},
                                                 {6, 1, 256, DType::kF16}}) {
    std::mt19937_64 rng(CaseSeed(1300 + g.head_dim + static_cast<int>(g.dtype)));
    CUDA_TEST_ASSIGN_OR_FAIL(Caches c, MakeCaches(g, kPool));
    std::vector<int32_t> ids(kPool);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    const int seqs = 3;
    const int prior[seqs] = {5, 300, 1100};
    const int first_block[seqs] = {0, 2, 24};  // of the shuffled pool; 69 blocks for 1100
    const int64_t q_dim = int64_t{g.n_head} * g.head_dim, kv_dim = int64_t{g.n_kv_head} * g.head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
    std::vector<int32_t> tables, offsets, positions;
    for (int s = 0; s < seqs; ++s) {
      const int32_t* table = ids.data() + first_block[s];
      std::vector<int32_t> hist(prior[s] + 1);
      std::iota(hist.begin(), hist.end(), 0);
      std::vector<float> k = Random(hist.size() * kv_dim, rng), v = Random(hist.size() * kv_dim, rng);
      kernels::KvWrite(c.host, table, hist.data(), hist.size(), k.data(), v.data());
      positions.push_back(prior[s]);
      offsets.push_back(static_cast<int32_t>(tables.size()));
      tables.insert(tables.end(), table, table + (prior[s] + kBlockSize) / kBlockSize);
    }
    CUDA_TEST_ASSERT_OK(CopyToDevice(c.host_k.data(), c.host_k.size(), c.dev_k.data()));
    CUDA_TEST_ASSERT_OK(CopyToDevice(c.host_v.data(), c.host_v.size(), c.dev_v.data()));
    const std::vector<float> q = Random(seqs * q_dim, rng, 2.0f);
    std::vector<float> cpu(seqs * q_dim);
    for (int s = 0; s < seqs; ++s) {
      kernels::Attention(&q[s * q_dim], &positions[s], 1, g.n_head, c.host,
                         tables.data() + offsets[s], scale, &cpu[s * q_dim], nullptr);
    }
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dtables, ToDevice(tables));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer doffsets, ToDevice(offsets));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dpos, ToDevice(positions));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dq, ToDevice(q));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dout, DeviceBuffer::Allocate(cpu.size() * 4));
    CUDA_TEST_ASSIGN_OR_FAIL(
        DeviceBuffer scratch,
        DeviceBuffer::Allocate(kernels::cuda::AttentionDecodeScratchBytes(seqs, g.n_head)));
    CUDA_TEST_ASSERT_OK(kernels::cuda::AttentionDecodeBatch(
        dq.as<float>(), dpos.as<int32_t>(), seqs, g.n_head, c.dev, dtables.as<int32_t>(),
        doffsets.as<int32_t>(), scale, scratch.as<float>(), dout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> together, ToHost<float>(dout, cpu.size()));
    const double err = MaxElementRelativeError(together, cpu);
    CUDA_TEST_CHECK(err < 1e-5, "%s heads %d/%d dim %d, split decode: %.3e vs CPU",
                    kernels::DTypeName(g.dtype), g.n_head, g.n_kv_head, g.head_dim, err);
    for (int s = 0; s < seqs; ++s) {
      CUDA_TEST_ASSERT_OK(kernels::cuda::AttentionDecodeBatch(
          dq.as<float>() + s * q_dim, dpos.as<int32_t>() + s, 1, g.n_head, c.dev,
          dtables.as<int32_t>(), doffsets.as<int32_t>() + s, scale, scratch.as<float>(),
          dout.as<float>(), nullptr));
      CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> alone, ToHost<float>(dout, q_dim));
      const std::vector<float> mine(together.begin() + s * q_dim,
                                    together.begin() + (s + 1) * q_dim);
      CUDA_TEST_CHECK(BitwiseMismatches(mine, alone) == 0,
                      "%s: sequence %d (%d positions) batched differs from alone",
                      kernels::DTypeName(g.dtype), s, prior[s] + 1);
    }
    std::printf("  %s heads %d/%d head_dim %d, split decode at 6/301/1101 positions: %.2e\n",
                kernels::DTypeName(g.dtype), g.n_head, g.n_kv_head, g.head_dim, err);

    // A prefill chunk of 5 tokens of sequence 1 (positions 296..300, the
    // runner sends chunks of up to 8 tokens here too): each token sees its
    // own causal prefix.
    std::vector<int32_t> chunk_pos(5), chunk_off(5, offsets[1]);
    std::iota(chunk_pos.begin(), chunk_pos.end(), 296);
    const std::vector<float> cq = Random(5 * q_dim, rng, 2.0f);
    std::vector<float> chunk_cpu(5 * q_dim);
    kernels::Attention(cq.data(), chunk_pos.data(), 5, g.n_head, c.host, tables.data() + offsets[1],
                       scale, chunk_cpu.data(), nullptr);
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dcpos, ToDevice(chunk_pos));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dcoff, ToDevice(chunk_off));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dcq, ToDevice(cq));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dcout, DeviceBuffer::Allocate(chunk_cpu.size() * 4));
    CUDA_TEST_ASSIGN_OR_FAIL(
        DeviceBuffer cscratch,
        DeviceBuffer::Allocate(kernels::cuda::AttentionDecodeScratchBytes(5, g.n_head)));
    CUDA_TEST_ASSERT_OK(kernels::cuda::AttentionDecodeBatch(
        dcq.as<float>(), dcpos.as<int32_t>(), 5, g.n_head, c.dev, dtables.as<int32_t>(),
        dcoff.as<int32_t>(), scale, cscratch.as<float>(), dcout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> chunk_gpu, ToHost<float>(dcout, chunk_cpu.size()));
    CUDA_TEST_CHECK(MaxElementRelativeError(chunk_gpu, chunk_cpu) < 1e-5,
                    "%s: split attention over a 5-token chunk: %.3e vs CPU",
                    kernels::DTypeName(g.dtype), MaxElementRelativeError(chunk_gpu, chunk_cpu));
  }
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  return RunCudaTests("cuda_attention_test",
                      {{"SingleSequenceMatchesCpu", SingleSequenceMatchesCpu},
                       {"BatchedStepMatchesPerSequenceCpu", BatchedStepMatchesPerSequenceCpu},
                       {"DecodeSplitMatchesCpuAndIsBatchInvariant",
                        DecodeSplitMatchesCpuAndIsBatchInvariant}});
}
