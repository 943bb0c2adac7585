// MatMul and DequantizeRows on the GPU against the CPU kernels (the oracle)
// and against a float64 product of the same inputs.
//
// Tolerances (relative Frobenius error ||gpu - ref|| / ||ref||):
//   vs float64 of what the GPU multiplies: W * x (F32 weights, and every
//     type up to kGemvMaxTokens tokens, where Gemv reads float32
//     activations) or W * round16(x) (F16/BF16 through cuBLASLt): < 1e-5,
//     since only float32 rounding of the accumulation differs (k <= 4096
//     terms of random sign: about sqrt(k) * 2^-24 relative, 4e-6);
//   vs the CPU kernel: < 1e-5 where both multiply float32 activations; for
//     F16/BF16 through cuBLASLt the rounding of x to 16 bits adds about
//     2^-11 (F16) or 2^-8 (BF16) relative per product term, which over a dot
//     product of random signs stays near that per element: bounds 2e-3 and
//     1e-2.
// Q8_0 and Q4_K (random valid blocks): vs float64 of the exactly decoded
// weights times x (Gemv) or of their BF16 rounding times round_bf16(x)
// (cuBLASLt): < 1e-5; vs the CPU kernel, which quantises x to int8 per
// block of 32 / 256 (about 2^-8 relative per term): < 2e-2, and < 3e-2
// with the BF16 roundings on top.
// Up to kGemvMaxTokens tokens a token's row is bitwise the same whatever the
// token count, and MatMulShared is bitwise separate MatMuls.
// DequantizeRows widens or decodes exactly: bitwise equal to
// kernels::DequantizeRow.
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cuda/blas_lt.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_test_util.h"

namespace tessera::cuda_test {
namespace {

using kernels::DType;
using kernels::WeightMatrix;
using kernels::cuda::DeviceBuffer;

struct Shape {
  int64_t rows, cols, tokens;
  int64_t pad = 0;  // extra elements per row (row_bytes > cols * size)
};

// A random matrix in `type`'s storage, with its widened values.
struct HostMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> widened;  // [rows][cols]
  WeightMatrix view;           // data = bytes (host)
};

bool Quantised(DType type) { return type == DType::kQ8_0 || type == DType::kQ4_K; }

void StoreHalf(uint8_t* p, float v) {
  const uint16_t h = kernels::F32ToF16(v);
  std::memcpy(p, &h, 2);
}

// Random valid Q8_0 / Q4_K blocks (quants and packed scales random bytes,
// the f16 scales sized so weights are about 1/sqrt(cols)), `pad` extra bytes
// per row, widened by the CPU's DequantizeRow.
HostMatrix RandomBlocks(DType type, int64_t rows, int64_t cols, int64_t pad, std::mt19937_64& rng) {
  HostMatrix m;
  const size_t row_bytes = kernels::RowBytes(type, cols) + pad;
  m.bytes.resize(row_bytes * rows);
  for (uint8_t& b : m.bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.5f, 1.5f);
  const float unit = 1.0f / std::sqrt(static_cast<float>(cols));
  const int64_t blocks = cols / kernels::BlockSize(type);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* blk = m.bytes.data() + r * row_bytes + b * kernels::BlockBytes(type);
      if (type == DType::kQ8_0) {
        StoreHalf(blk, scale(rng) * unit / 64.0f * ((rng() & 1) ? 1.0f : -1.0f));
      } else {  // Q4_K: d and dmin, 6-bit scales and mins, 4-bit quants
        StoreHalf(blk, scale(rng) * unit / (32.0f * 8.0f));
        StoreHalf(blk + 2, scale(rng) * unit / (32.0f * 2.0f));
      }
    }
  }
  m.view = {type, m.bytes.data(), rows, cols, row_bytes};
  m.widened.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) kernels::DequantizeRow(m.view, r, &m.widened[r * cols]);
  return m;
}

HostMatrix RandomMatrix(DType type, int64_t rows, int64_t cols, int64_t pad, std::mt19937_64& rng) {
  if (Quantised(type)) return RandomBlocks(type, rows, cols, pad, rng);
  std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(cols)));
  const size_t elem = type == DType::kF32 ? 4 : 2;
  const int64_t ld = cols + pad;
  HostMatrix m;
  m.bytes.assign(static_cast<size_t>(rows * ld) * elem, 0);
  m.widened.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float v = dist(rng);
      uint8_t* p = m.bytes.data() + (r * ld + c) * elem;
      if (type == DType::kF32) {
        std::memcpy(p, &v, 4);
        m.widened[r * cols + c] = v;
      } else {
        const uint16_t h = type == DType::kF16 ? kernels::F32ToF16(v) : kernels::F32ToBF16(v);
        std::memcpy(p, &h, 2);
        m.widened[r * cols + c] =
            type == DType::kF16 ? kernels::F16ToF32(h) : kernels::BF16ToF32(h);
      }
    }
  }
  m.view.dtype = type;
  m.view.data = m.bytes.data();
  m.view.rows = rows;
  m.view.cols = cols;
  m.view.row_bytes = static_cast<size_t>(ld) * elem;
  return m;
}

float RoundTo(DType type, float v) {
  if (type == DType::kF16) return kernels::F16ToF32(kernels::F32ToF16(v));
  if (type == DType::kBF16) return kernels::BF16ToF32(kernels::F32ToBF16(v));
  return v;
}

void CheckMatMul(DType type, const Shape& s, uint64_t seed, kernels::cuda::BlasLt& blas,
                 kernels::ThreadPool& pool) {
  std::mt19937_64 rng(CaseSeed(seed));
  HostMatrix w = RandomMatrix(type, s.rows, s.cols, s.pad, rng);
  std::normal_distribution<float> xd(0.0f, 1.0f);
  std::vector<float> x(s.tokens * s.cols);
  for (float& v : x) v = xd(rng);

  std::vector<float> cpu(s.tokens * s.rows);
  kernels::MatMul(w.view, x.data(), s.tokens, cpu.data(), &pool);
  // Gemv multiplies the float32 activations; cuBLASLt their 16-bit rounding.
  const bool gemv = s.tokens <= kernels::cuda::kGemvMaxTokens;
  std::vector<double> ref(s.tokens * s.rows);
  for (int64_t t = 0; t < s.tokens; ++t) {
    for (int64_t o = 0; o < s.rows; ++o) {
      double acc = 0.0;
      for (int64_t i = 0; i < s.cols; ++i) {
        const float xi = x[t * s.cols + i];
        // cuBLASLt multiplies a quantised matrix as BF16.
        const DType gemm_type = Quantised(type) ? DType::kBF16 : type;
        const float wi = w.widened[o * s.cols + i];
        acc += gemv ? static_cast<double>(wi) * xi
                    : static_cast<double>(RoundTo(gemm_type, wi)) * RoundTo(gemm_type, xi);
      }
      ref[t * s.rows + o] = acc;
    }
  }

  CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dw, ToDevice(w.bytes));
  CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
  CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, DeviceBuffer::Allocate(cpu.size() * sizeof(float)));
  // Poison: an element the kernel fails to write stays NaN and fails below.
  CUDA_TEST_ASSERT_OK(dy.bytes() == 0 ? absl::OkStatus()
                                      : (cudaMemset(dy.data(), 0xff, dy.bytes()) == cudaSuccess
                                             ? absl::OkStatus()
                                             : absl::InternalError("cudaMemset")));
  WeightMatrix dview = w.view;
  dview.data = dw.data();
  CUDA_TEST_ASSERT_OK(
      kernels::cuda::MatMul(blas, dview, dx.as<float>(), s.tokens, dy.as<float>(), nullptr));
  CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dy, cpu.size()));

  const double vs_ref = RelativeError(gpu, ref);
  const double vs_cpu = RelativeError(gpu, cpu);
  const double cpu_tol = Quantised(type)           ? (gemv ? 2e-2 : 3e-2)
                         : type == DType::kF32 || gemv ? 1e-5
                         : type == DType::kF16         ? 2e-3
                                                       : 1e-2;
  std::printf("  %-4s rows=%-5ld cols=%-5ld tokens=%-4ld pad=%ld: vs float64 %.2e, vs CPU %.2e\n",
              kernels::DTypeName(type), long(s.rows), long(s.cols), long(s.tokens), long(s.pad),
              vs_ref, vs_cpu);
  CUDA_TEST_CHECK(vs_ref < 1e-5, "%s %ldx%ld tokens %ld: %.3e vs float64", kernels::DTypeName(type),
                  long(s.rows), long(s.cols), long(s.tokens), vs_ref);
  CUDA_TEST_CHECK(vs_cpu < cpu_tol, "%s %ldx%ld tokens %ld: %.3e vs CPU (tolerance %.0e)",
                  kernels::DTypeName(type), long(s.rows), long(s.cols), long(s.tokens), vs_cpu,
                  cpu_tol);
}

void MatMulMatchesCpuAndFloat64() {
  CUDA_TEST_ASSIGN_OR_FAIL(auto blas, kernels::cuda::BlasLt::Create());
  kernels::ThreadPool pool(4);
  // Model shapes (SmolLM2 and Llama-3-8B projections, decode and prefill),
  // odd sizes, padded rows, then random shapes.
  std::vector<Shape> shapes = {{576, 576, 1},    {1536, 576, 7},  {576, 1536, 16},
                               {4096, 4096, 1},  {1024, 4096, 3}, {14336, 4096, 2},
                               {3, 64, 33},      {130, 66, 5},    {192, 320, 64, 8},
                               {257, 128, 1, 2}, {64, 4096, 130}, {49152, 576, 1},
                               {100, 300, 8},    {100, 300, 9},   {7, 13, 4, 1},
                               {33, 1000, 8, 3}};
  std::mt19937_64 rng(CaseSeed(7));
  for (int i = 0; i < 6; ++i) {
    shapes.push_back({1 + int64_t(rng() % 700), 2 * (1 + int64_t(rng() % 400)),
                      1 + int64_t(rng() % 70), int64_t(rng() % 3) * 2});
  }
  uint64_t seed = 100;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const Shape& s : shapes) CheckMatMul(type, s, seed++, *blas, pool);
  }
  // Quantised weights: whole blocks (Q4_K: 256 columns), pad in bytes.
  const std::vector<Shape> block_shapes = {{576, 512, 1},   {1536, 512, 7},  {512, 1536, 16},
                                           {4096, 4096, 1}, {1024, 4096, 3}, {256, 256, 9},
                                           {100, 512, 8},   {100, 512, 9},   {33, 1024, 8, 3},
                                           {14336, 4096, 2}, {64, 4096, 130}};
  for (DType type : {DType::kQ8_0, DType::kQ4_K}) {
    for (const Shape& s : block_shapes) CheckMatMul(type, s, seed++, *blas, pool);
  }
  // Q8_0 also where a row is not whole 256-column passes (the tail loop).
  for (const Shape& s : std::vector<Shape>{{576, 576, 1}, {49152, 576, 1}, {130, 96, 5}, {70, 608, 12}}) {
    CheckMatMul(DType::kQ8_0, s, seed++, *blas, pool);
  }
}

// Up to kGemvMaxTokens tokens, token t's row of an n-token product is
// bitwise its row alone, and MatMulShared over Q/K/V-like matrices is
// bitwise three MatMuls: the sums' order depends on neither.
void GemvIsBatchInvariant() {
  CUDA_TEST_ASSIGN_OR_FAIL(auto blas, kernels::cuda::BlasLt::Create());
  std::mt19937_64 rng(CaseSeed(21));
  const int64_t n = kernels::cuda::kGemvMaxTokens;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_K}) {
    using Case = std::tuple<int64_t, int64_t, int64_t>;
    const std::vector<Case> cases =
        Quantised(type) ? std::vector<Case>{{576, 512, 0}, {1024, 4096, 0}, {37, 768, 3}}
                        : std::vector<Case>{{576, 576, 0}, {1024, 4096, 0}, {37, 300, 1}};
    for (const auto& [rows, cols, pad] : cases) {
      HostMatrix w = RandomMatrix(type, rows, cols, pad, rng);
      std::normal_distribution<float> xd(0.0f, 1.0f);
      std::vector<float> x(n * cols);
      for (float& v : x) v = xd(rng);
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dw, ToDevice(w.bytes));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dx, ToDevice(x));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy, DeviceBuffer::Allocate(n * rows * sizeof(float)));
      WeightMatrix dview = w.view;
      dview.data = dw.data();
      std::vector<std::vector<float>> alone(n);
      for (int64_t t = 0; t < n; ++t) {
        CUDA_TEST_ASSERT_OK(kernels::cuda::MatMul(*blas, dview, dx.as<float>() + t * cols, 1,
                                                  dy.as<float>(), nullptr));
        CUDA_TEST_ASSIGN_OR_FAIL(alone[t], ToHost<float>(dy, rows));
      }
      for (int64_t tokens = 2; tokens <= n; ++tokens) {
        CUDA_TEST_ASSERT_OK(kernels::cuda::MatMul(*blas, dview, dx.as<float>(), tokens,
                                                  dy.as<float>(), nullptr));
        CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> together, ToHost<float>(dy, tokens * rows));
        for (int64_t t = 0; t < tokens; ++t) {
          const std::vector<float> row(together.begin() + t * rows,
                                       together.begin() + (t + 1) * rows);
          CUDA_TEST_CHECK(BitwiseMismatches(row, alone[t]) == 0,
                          "%s %ldx%ld: token %ld of %ld differs from alone in %ld values",
                          kernels::DTypeName(type), long(rows), long(cols), long(t), long(tokens),
                          long(BitwiseMismatches(row, alone[t])));
        }
      }
      // Three matrices sharing the input in one launch.
      WeightMatrix three[3] = {dview, dview, dview};
      three[1].rows = rows / 2;
      three[2].rows = 1;
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy2, DeviceBuffer::Allocate(n * rows * sizeof(float)));
      CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dy3, DeviceBuffer::Allocate(n * rows * sizeof(float)));
      float* const outs[3] = {dy.as<float>(), dy2.as<float>(), dy3.as<float>()};
      CUDA_TEST_ASSERT_OK(
          kernels::cuda::MatMulShared(*blas, three, 3, dx.as<float>(), n, outs, nullptr));
      for (int i = 0; i < 3; ++i) {
        CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> shared, ToHost<float>(
            i == 0 ? dy : i == 1 ? dy2 : dy3, n * three[i].rows));
        CUDA_TEST_ASSERT_OK(kernels::cuda::MatMul(*blas, three[i], dx.as<float>(), n,
                                                  dy.as<float>(), nullptr));
        CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> separate, ToHost<float>(dy, n * three[i].rows));
        CUDA_TEST_CHECK(BitwiseMismatches(shared, separate) == 0,
                        "%s: shared matrix %d differs from its own MatMul", kernels::DTypeName(type),
                        i);
      }
    }
  }
}

// Formats the GPU does not take are refused naming the ones it does; a
// quantised row that is not whole blocks is refused too.
void MatMulRefusesOtherFormats() {
  CUDA_TEST_ASSIGN_OR_FAIL(auto blas, kernels::cuda::BlasLt::Create());
  WeightMatrix w;
  w.dtype = DType::kQ4_0;
  w.rows = 4;
  w.cols = 32;
  w.row_bytes = kernels::RowBytes(DType::kQ4_0, 32);
  absl::Status s = kernels::cuda::MatMul(*blas, w, nullptr, 1, nullptr, nullptr);
  CUDA_TEST_CHECK(s.code() == absl::StatusCode::kUnimplemented &&
                      s.ToString().find("Q4_K") != std::string::npos,
                  "%s", s.ToString().c_str());
  w.dtype = DType::kQ4_K;
  w.cols = 128;  // half a super-block
  w.row_bytes = 144;
  s = kernels::cuda::MatMul(*blas, w, nullptr, 1, nullptr, nullptr);
  CUDA_TEST_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "%s", s.ToString().c_str());
}

void DequantizeRowsIsExact() {
  std::mt19937_64 rng(CaseSeed(11));
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_K}) {
    const int64_t cols = Quantised(type) ? 512 : 96;
    HostMatrix w = RandomMatrix(type, 300, cols, 4, rng);
    const std::vector<int32_t> ids = {0, 299, 17, 17, 150};
    std::vector<float> cpu(ids.size() * cols);
    for (size_t i = 0; i < ids.size(); ++i) kernels::DequantizeRow(w.view, ids[i], &cpu[i * cols]);
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dw, ToDevice(w.bytes));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer did, ToDevice(ids));
    CUDA_TEST_ASSIGN_OR_FAIL(DeviceBuffer dout, DeviceBuffer::Allocate(cpu.size() * 4));
    WeightMatrix dview = w.view;
    dview.data = dw.data();
    CUDA_TEST_ASSERT_OK(kernels::cuda::DequantizeRows(dview, did.as<int32_t>(), ids.size(),
                                                      dout.as<float>(), nullptr));
    CUDA_TEST_ASSIGN_OR_FAIL(std::vector<float> gpu, ToHost<float>(dout, cpu.size()));
    CUDA_TEST_CHECK(BitwiseMismatches(gpu, cpu) == 0, "%s: %ld mismatches",
                    kernels::DTypeName(type), long(BitwiseMismatches(gpu, cpu)));
  }
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  return RunCudaTests("cuda_matmul_test",
                      {{"MatMulMatchesCpuAndFloat64", MatMulMatchesCpuAndFloat64},
                       {"GemvIsBatchInvariant", GemvIsBatchInvariant},
                       {"MatMulRefusesOtherFormats", MatMulRefusesOtherFormats},
                       {"DequantizeRowsIsExact", DequantizeRowsIsExact}});
}
