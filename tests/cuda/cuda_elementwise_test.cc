// RmsNorm, Rope, SwiGlu, Softmax, Add, AddBias and SumParts on the GPU
// against the CPU kernels, and the fused stages against the unfused ops.
//
// Tolerance: per element |gpu - cpu| / max(1, |cpu|) < 1e-5 (float32
// element-wise). RmsNorm, Add and AddBias run the same float operations as
// the CPU, so they are checked bitwise; Rope, SwiGlu and Softmax call CUDA's
// sinf/cosf/expf, which may differ from glibc's by an ulp or two.
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_test_util.h"

namespace tessera::cuda_test {
namespace {

using kernels::cuda::DeviceBuffer;

std::vector<float> Random(size_t n, std::mt19937_64& rng, float stddev = 1.0f, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

void RmsNormMatchesCpu() {
  std::mt19937_64 rng(CaseSeed(21));
  const int64_t shapes[][2] = {{1, 576}, {7, 576}, {3, 4096}, {33, 130}, {2, 8192}, {5, 1}};
  for (const auto& s : shapes) {
    const int64_t tokens = s[0], dim = s[1];
    std::vector<float> x = Random(tokens * dim, rng, 3.0f);
    std::vector<float> w = Random(dim, rng, 0.1f, 1.0f);
    std::vector<float> cpu(x.size());
    kernels::RmsNorm(x.data(), w.data(), tokens, dim, 1e-5f, cpu.data());
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dw, ToDevice(w));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, DeviceBuffer::Allocate(x.size() * 4));
    CUDA_TEST_ASSERT_OK(kernels::cuda::RmsNorm(dx.as<float>(), dw.as<float>(), tokens, dim, 1e-5f,
                                               dy.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dy, x.size()));
    CUDA_TEST_CHECK(MaxElementRelativeError(gpu, cpu) < 1e-5, "%ldx%ld: %.3e", long(tokens),
                    long(dim), MaxElementRelativeError(gpu, cpu));
    CUDA_TEST_CHECK(BitwiseMismatches(gpu, cpu) == 0, "%ldx%ld: %ld elements differ bitwise",
                    long(tokens), long(dim), long(BitwiseMismatches(gpu, cpu)));
    // In place (x == y), as the runner uses it.
    CUDA_TEST_ASSERT_OK(kernels::cuda::RmsNorm(dx.as<float>(), dw.as<float>(), tokens, dim, 1e-5f,
                                               dx.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> in_place, ToHost<float>(dx, x.size()));
    CUDA_TEST_CHECK(BitwiseMismatches(in_place, gpu) == 0, "in place differs");
  }
}

struct RopeCase {
  int heads, head_dim, rot_dim;
  float base;
  bool factors, neox;
};

void RopeMatchesCpu() {
  std::mt19937_64 rng(CaseSeed(31));
  const RopeCase cases[] = {{9, 64, 64, 10000.0f, false, false},   {3, 64, 32, 10000.0f, false, false},
                            {32, 128, 128, 500000.0f, true, false}, {4, 10, 6, 100.0f, true, false},
                            {3, 64, 64, 1000000.0f, false, true},   {2, 32, 16, 10000.0f, true, true},
                            {8, 128, 128, 500000.0f, true, true}};
  const std::vector<int32_t> positions = {0, 1, 2, 17, 300, 4095, 8191, 5};
  for (const RopeCase& c : cases) {
    const int64_t tokens = positions.size();
    std::vector<float> ff(c.rot_dim / 2);
    for (float& f : ff) f = std::uniform_real_distribution<float>(1.0f, 8.0f)(rng);
    std::vector<float> x = Random(tokens * c.heads * c.head_dim, rng);
    std::vector<float> cpu = x;
    kernels::RopeParams p;
    p.head_dim = c.head_dim;
    p.rot_dim = c.rot_dim;
    p.freq_base = c.base;
    p.freq_factors = c.factors ? ff.data() : nullptr;
    p.neox = c.neox;
    kernels::Rope(cpu.data(), positions.data(), tokens, c.heads, p);

    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dpos, ToDevice(positions));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dff, ToDevice(ff));
    kernels::RopeParams dp = p;
    dp.freq_factors = c.factors ? dff.as<float>() : nullptr;
    CUDA_TEST_ASSERT_OK(kernels::cuda::Rope(dx.as<float>(), dpos.as<int32_t>(), tokens, c.heads,
                                            dp, nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dx, x.size()));
    const double err = MaxElementRelativeError(gpu, cpu);
    std::printf("  heads %d head_dim %d rot_dim %d neox %d factors %d: max rel %.2e\n", c.heads,
                c.head_dim, c.rot_dim, c.neox, c.factors, err);
    CUDA_TEST_CHECK(err < 1e-5, "rope case heads %d head_dim %d rot %d neox %d: %.3e", c.heads,
                    c.head_dim, c.rot_dim, c.neox, err);
    // Dims past rot_dim are untouched.
    bool untouched = true;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int h = 0; h < c.heads; ++h) {
        for (int d = c.rot_dim; d < c.head_dim; ++d) {
          const size_t i = (t * c.heads + h) * c.head_dim + d;
          untouched &= gpu[i] == x[i];
        }
      }
    }
    CUDA_TEST_CHECK(untouched, "dims past rot_dim changed");
  }
}

void SwiGluAddSoftmaxMatchCpu() {
  std::mt19937_64 rng(CaseSeed(41));
  for (int64_t n : {int64_t{1}, int64_t{1536}, int64_t{14336 * 3}, int64_t{49152}, int64_t{128256}}) {
    std::vector<float> g = Random(n, rng, 4.0f), u = Random(n, rng, 2.0f);
    std::vector<float> cpu(n);
    kernels::SwiGlu(g.data(), u.data(), n, cpu.data());
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dg, ToDevice(g));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer du, ToDevice(u));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dout, DeviceBuffer::Allocate(n * 4));
    CUDA_TEST_ASSERT_OK(
        kernels::cuda::SwiGlu(dg.as<float>(), du.as<float>(), n, dout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dout, n));
    CUDA_TEST_CHECK(MaxElementRelativeError(gpu, cpu) < 1e-5, "SwiGlu n=%ld: %.3e", long(n),
                    MaxElementRelativeError(gpu, cpu));

    std::vector<float> y = Random(n, rng), x = Random(n, rng);
    std::vector<float> cpu_add = y;
    kernels::Add(x.data(), n, cpu_add.data());
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, ToDevice(y));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dxx, ToDevice(x));
    CUDA_TEST_ASSERT_OK(kernels::cuda::Add(dxx.as<float>(), n, dy.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu_add, ToHost<float>(dy, n));
    CUDA_TEST_CHECK(BitwiseMismatches(gpu_add, cpu_add) == 0, "Add n=%ld differs", long(n));

    std::vector<float> logits = Random(n, rng, 5.0f);
    std::vector<float> cpu_sm = logits;
    kernels::Softmax(cpu_sm.data(), n);
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dl, ToDevice(logits));
    CUDA_TEST_ASSERT_OK(kernels::cuda::Softmax(dl.as<float>(), n, nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu_sm, ToHost<float>(dl, n));
    // Probabilities are small: compare relative to each value, floor 1e-30.
    CUDA_TEST_CHECK(MaxElementRelativeError(gpu_sm, cpu_sm, 1e-30) < 1e-5, "Softmax n=%ld: %.3e",
                    long(n), MaxElementRelativeError(gpu_sm, cpu_sm, 1e-30));
  }
}

// The CPU engine adds a Q/K/V bias with kernels::Add once per token row
// (engine/model_runner.cc); the GPU does all rows in one launch. Shapes are
// the Q and KV widths of Qwen2-0.5B (896, 128) and GLM-4-9B (4096, 256), an
// odd width, and token counts past one grid's worth of threads.
void AddBiasMatchesCpu() {
  std::mt19937_64 rng(CaseSeed(51));
  const int64_t shapes[][2] = {{1, 896},  {17, 128}, {130, 4096}, {7, 256},
                               {3, 1},    {5, 77},   {2048, 896}};
  for (const auto& s : shapes) {
    const int64_t tokens = s[0], dim = s[1];
    std::vector<float> x = Random(tokens * dim, rng, 2.0f);
    std::vector<float> bias = Random(dim, rng, 0.5f);
    std::vector<float> cpu = x;
    for (int64_t t = 0; t < tokens; ++t) kernels::Add(bias.data(), dim, cpu.data() + t * dim);
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer db, ToDevice(bias));
    CUDA_TEST_ASSERT_OK(
        kernels::cuda::AddBias(db.as<float>(), tokens, dim, dx.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dx, x.size()));
    CUDA_TEST_CHECK(BitwiseMismatches(gpu, cpu) == 0, "%ldx%ld: %ld elements differ bitwise",
                    long(tokens), long(dim), long(BitwiseMismatches(gpu, cpu)));
    // The bias itself is an input only.
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> bias_after, ToHost<float>(db, bias.size()));
    CUDA_TEST_CHECK(BitwiseMismatches(bias_after, bias) == 0, "%ldx%ld: the bias changed",
                    long(tokens), long(dim));
  }
}

// SumParts adds gathered partial sums in rank order, as the CPU
// tensor-parallel group does (float addition is not associative, so the
// order shows: the inputs span magnitudes, and the reversed order is
// checked to differ somewhere, or the test could not see a wrong order).
void SumPartsAddsInRankOrder() {
  std::mt19937_64 rng(CaseSeed(53));
  for (const int count : {2, 3, 4, 8}) {
    for (const int64_t n : {int64_t{1}, int64_t{576}, int64_t{4096 * 8}, int64_t{4099 * 17}}) {
      std::vector<float> parts = Random(count * n, rng, 1.0f);
      for (int64_t i = 0; i < count * n; i += 3) parts[i] *= 4096.0f;
      std::vector<float> cpu(n), reversed(n);
      for (int64_t i = 0; i < n; ++i) {
        float sum = parts[i], back = parts[(count - 1) * n + i];
        for (int p = 1; p < count; ++p) {
          sum += parts[p * n + i];
          back += parts[(count - 1 - p) * n + i];
        }
        cpu[i] = sum;
        reversed[i] = back;
      }
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dp, ToDevice(parts));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, DeviceBuffer::Allocate(sizeof(float) * n));
      CUDA_TEST_ASSERT_OK(kernels::cuda::SumParts(dp.as<float>(), count, n, dy.as<float>(), nullptr));
      CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dy, n));
      CUDA_TEST_CHECK(BitwiseMismatches(gpu, cpu) == 0, "%d parts of %ld: %ld sums differ bitwise",
                      count, long(n), long(BitwiseMismatches(gpu, cpu)));
      if (count > 2 && n > 1000) {
        CUDA_TEST_CHECK(BitwiseMismatches(reversed, cpu) > 0,
                        "%d parts of %ld: the order of addition never matters for these inputs",
                        count, long(n));
      }
    }
  }
}

// The fused stages (fused.cu) are bitwise the unfused ops they replace, run
// on the same device: AddRmsNorm = Add then RmsNorm (and so the CPU's, which
// those match bitwise); QkvRopeKvWrite = AddBias x3, Rope x2, KvWriteBatch.
void FusedStagesEqualTheUnfusedOps() {
  std::mt19937_64 rng(CaseSeed(77));
  for (const auto& [tokens, dim] : std::vector<std::pair<int64_t, int64_t>>{{1, 576}, {9, 4096}}) {
    const std::vector<float> x = Random(tokens * dim, rng, 3.0f), delta = Random(tokens * dim, rng);
    const std::vector<float> w = Random(dim, rng, 0.1f, 1.0f);
    std::vector<float> cpu_x = x, cpu_y(x.size());
    kernels::Add(delta.data(), cpu_x.size(), cpu_x.data());
    kernels::RmsNorm(cpu_x.data(), w.data(), tokens, dim, 1e-5f, cpu_y.data());
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dd, ToDevice(delta));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dw, ToDevice(w));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, DeviceBuffer::Allocate(x.size() * 4));
    CUDA_TEST_ASSERT_OK(kernels::cuda::AddRmsNorm(dd.as<float>(), dx.as<float>(), dw.as<float>(),
                                                  tokens, dim, 1e-5f, dy.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gx, ToHost<float>(dx, x.size()));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gy, ToHost<float>(dy, x.size()));
    CUDA_TEST_CHECK(BitwiseMismatches(gx, cpu_x) == 0 && BitwiseMismatches(gy, cpu_y) == 0,
                    "AddRmsNorm %ldx%ld: %ld / %ld values differ from Add + RmsNorm", long(tokens),
                    long(dim), long(BitwiseMismatches(gx, cpu_x)), long(BitwiseMismatches(gy, cpu_y)));
  }

  struct Case {
    int n_head, n_kv_head, head_dim, rot_dim;
    bool neox, biases, factors;
    kernels::DType kv;
  };
  for (const Case& c : {Case{9, 3, 64, 64, false, false, false, kernels::DType::kF32},
                        Case{14, 2, 64, 64, true, true, false, kernels::DType::kF16},
                        Case{32, 2, 128, 64, false, true, false, kernels::DType::kF32},
                        Case{8, 4, 128, 32, true, true, true, kernels::DType::kF16}}) {
    const int64_t tokens = 5, blocks = 8, block_size = 16;
    const int64_t q_dim = int64_t{c.n_head} * c.head_dim, kv_dim = int64_t{c.n_kv_head} * c.head_dim;
    // Two sequences: tokens 0-2 use the table at offset 0, tokens 3-4 the one
    // at offset 4, so a kernel reading the wrong token's offset writes the
    // wrong blocks.
    const std::vector<int32_t> positions = {0, 17, 40, 3, 50};
    const std::vector<int32_t> tables = {3, 1, 7, 0, 5, 2, 6, 4};
    const std::vector<int32_t> offsets = {0, 0, 0, 4, 4};
    std::vector<float> factors(c.rot_dim / 2);
    for (float& f : factors) f = std::uniform_real_distribution<float>(1.0f, 8.0f)(rng);
    const std::vector<float> q = Random(tokens * q_dim, rng), k = Random(tokens * kv_dim, rng),
                             v = Random(tokens * kv_dim, rng);
    const std::vector<float> bq = Random(q_dim, rng), bk = Random(kv_dim, rng),
                             bv = Random(kv_dim, rng);
    const size_t elem = c.kv == kernels::DType::kF16 ? 2 : 4;
    const size_t cache_bytes = blocks * block_size * kv_dim * elem;
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dpos, ToDevice(positions));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dtab, ToDevice(tables));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer doff, ToDevice(offsets));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dbq, ToDevice(bq));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dbk, ToDevice(bk));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dbv, ToDevice(bv));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dff, ToDevice(factors));
    kernels::RopeParams rope;
    rope.head_dim = c.head_dim;
    rope.rot_dim = c.rot_dim;
    rope.freq_base = 10000.0f;
    rope.neox = c.neox;
    rope.freq_factors = c.factors ? dff.as<float>() : nullptr;
    std::vector<float> results[2][3];  // [unfused, fused][q, k cache, v cache] as bytes-in-floats
    for (int fused = 0; fused < 2; ++fused) {
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dq, ToDevice(q));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dk, ToDevice(k));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dv, ToDevice(v));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer kc, DeviceBuffer::Allocate(cache_bytes));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer vc, DeviceBuffer::Allocate(cache_bytes));
      CUDA_TEST_ASSERT_OK(cudaMemset(kc.data(), 0, cache_bytes) == cudaSuccess &&
                                  cudaMemset(vc.data(), 0, cache_bytes) == cudaSuccess
                              ? absl::OkStatus()
                              : absl::InternalError("cudaMemset"));
      kernels::KvLayer kv;
      kv.k = kc.data();
      kv.v = vc.data();
      kv.dtype = c.kv;
      kv.num_blocks = blocks;
      kv.block_size = block_size;
      kv.n_kv_head = c.n_kv_head;
      kv.head_dim = c.head_dim;
      const float* b[3] = {c.biases ? dbq.as<float>() : nullptr, c.biases ? dbk.as<float>() : nullptr,
                           c.biases ? dbv.as<float>() : nullptr};
      if (fused) {
        CUDA_TEST_ASSERT_OK(kernels::cuda::QkvRopeKvWrite(
            dq.as<float>(), dk.as<float>(), dv.as<float>(), b[0], b[1], b[2], dpos.as<int32_t>(),
            tokens, c.n_head, rope, kv, dtab.as<int32_t>(), doff.as<int32_t>(), nullptr));
      } else {
        if (c.biases) {
          CUDA_TEST_ASSERT_OK(kernels::cuda::AddBias(b[0], tokens, q_dim, dq.as<float>(), nullptr));
          CUDA_TEST_ASSERT_OK(kernels::cuda::AddBias(b[1], tokens, kv_dim, dk.as<float>(), nullptr));
          CUDA_TEST_ASSERT_OK(kernels::cuda::AddBias(b[2], tokens, kv_dim, dv.as<float>(), nullptr));
        }
        CUDA_TEST_ASSERT_OK(kernels::cuda::Rope(dq.as<float>(), dpos.as<int32_t>(), tokens,
                                                c.n_head, rope, nullptr));
        CUDA_TEST_ASSERT_OK(kernels::cuda::Rope(dk.as<float>(), dpos.as<int32_t>(), tokens,
                                                c.n_kv_head, rope, nullptr));
        CUDA_TEST_ASSERT_OK(kernels::cuda::KvWriteBatch(kv, dtab.as<int32_t>(), doff.as<int32_t>(),
                                                        dpos.as<int32_t>(), tokens, dk.as<float>(),
                                                        dv.as<float>(), nullptr));
      }
      CUDA_TEST_ASSIGN_OR_FAIL(results[fused][0], ToHost<float>(dq, q.size()));
      CUDA_TEST_ASSIGN_OR_FAIL(results[fused][1], ToHost<float>(kc, cache_bytes / 4));
      CUDA_TEST_ASSIGN_OR_FAIL(results[fused][2], ToHost<float>(vc, cache_bytes / 4));
    }
    for (int i = 0; i < 3; ++i) {
      CUDA_TEST_CHECK(BitwiseMismatches(results[0][i], results[1][i]) == 0,
                      "QkvRopeKvWrite (%d/%d heads, rot %d, neox %d, biases %d, factors %d, %s KV): "
                      "%s differs from the unfused ops in %ld values",
                      c.n_head, c.n_kv_head, c.rot_dim, c.neox, c.biases, c.factors,
                      kernels::DTypeName(c.kv), i == 0 ? "q" : i == 1 ? "K cache" : "V cache",
                      long(BitwiseMismatches(results[0][i], results[1][i])));
    }
  }
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  return RunCudaTests("cuda_elementwise_test",
                      {{"RmsNormMatchesCpu", RmsNormMatchesCpu},
                       {"RopeMatchesCpu", RopeMatchesCpu},
                       {"SwiGluAddSoftmaxMatchCpu", SwiGluAddSoftmaxMatchCpu},
                       {"AddBiasMatchesCpu", AddBiasMatchesCpu},
                       {"SumPartsAddsInRankOrder", SumPartsAddsInRankOrder},
                       {"FusedStagesEqualTheUnfusedOps", FusedStagesEqualTheUnfusedOps}});
}
