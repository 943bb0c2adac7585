// tessera_cuda_bench: the GPU path's speed against its ceilings, in one run.
//
//   tessera_cuda_bench --model=llama3-8b-bf16.gguf [--steps=64] [--batch=32]
//
// 1. HBM bandwidth: a device-to-device copy of 2 GiB (bytes read + written
//    over time, median of 20).
// 2. GEMM: our MatMul (decode shapes, up to 8 tokens: Gemv on f32
//    activations; prefill shapes: activations rounded to bf16, then
//    cuBLASLt) against a raw cublasGemmEx on pre-converted bf16 inputs, at
//    decode and prefill shapes of Llama-3-8B, in TFLOP/s and GB/s (median
//    of 50).
// 3. Decode at batch 1: CudaModelRunner steps (after a 128-token prefill)
//    with greedy device sampling; tok/s against the roofline
//    bandwidth / weight bytes read per token.
// 4. Decode at batch 32: 32 sequences per step (forward only, logits left
//    on the device, fixed next tokens); tokens/s over all sequences.
// Without a GPU it prints "SKIPPED: no CUDA device (...)" and exits 0.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "base/status_macros.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/cuda_sampler.h"
#include "engine/model_weights.h"
#include "kernels/cuda/blas_lt.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/stream.h"

ABSL_FLAG(std::string, model, "", "GGUF model (F32/F16/BF16) for the decode benchmarks");
ABSL_FLAG(int, steps, 64, "decode steps timed per batch size");
ABSL_FLAG(int, batch, 32, "sequences in the batched decode benchmark");
ABSL_FLAG(int, prompt, 128, "prompt tokens prefilled before timing");

namespace tessera {
namespace {

using kernels::cuda::DeviceBuffer;
using kernels::cuda::Event;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

#define CUBLAS_V2_RETURN_IF_ERROR(call)                                                      \
  do {                                                                                       \
    const cublasStatus_t st_ = (call);                                                       \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      return absl::InternalError(absl::StrCat(#call, " failed: ", cublasGetStatusString(st_))); \
    }                                                                                        \
  } while (0)

// Median milliseconds of `fn` over `reps` runs on `stream`, after 3 warm-ups.
template <typename Fn>
absl::StatusOr<double> TimeMs(cudaStream_t stream, int reps, Fn fn) {
  ASSIGN_OR_RETURN(Event start, Event::Create());
  ASSIGN_OR_RETURN(Event stop, Event::Create());
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(fn());
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    RETURN_IF_ERROR(start.Record(stream));
    RETURN_IF_ERROR(fn());
    RETURN_IF_ERROR(stop.Record(stream));
    RETURN_IF_ERROR(stop.Synchronize());
    ASSIGN_OR_RETURN(float t, stop.MillisecondsSince(start));
    ms.push_back(t);
  }
  return Median(ms);
}

absl::StatusOr<double> CopyBandwidth(cudaStream_t stream) {
  const size_t bytes = size_t{2} << 30;
  ASSIGN_OR_RETURN(DeviceBuffer a, DeviceBuffer::Allocate(bytes));
  ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(bytes));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(a.data(), 1, bytes, stream));
  ASSIGN_OR_RETURN(double ms, TimeMs(stream, 20, [&]() -> absl::Status {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice,
                                         stream));
    return absl::OkStatus();
  }));
  return 2.0 * bytes / (ms * 1e-3);  // bytes read + written per second
}

absl::Status GemmTable(cudaStream_t stream) {
  ASSIGN_OR_RETURN(auto blas, kernels::cuda::BlasLt::Create());
  cublasHandle_t raw = nullptr;
  CUBLAS_V2_RETURN_IF_ERROR(cublasCreate(&raw));
  std::unique_ptr<cublasContext, void (*)(cublasHandle_t)> raw_owner(
      raw, [](cublasHandle_t h) { cublasDestroy(h); });
  CUBLAS_V2_RETURN_IF_ERROR(cublasSetStream(raw, stream));
  struct Shape {
    int64_t m, n, k;
    const char* what;
  };
  const Shape shapes[] = {{4096, 1, 4096, "attn_q, decode"},
                          {14336, 1, 4096, "ffn_up, decode"},
                          {4096, 1, 14336, "ffn_down, decode"},
                          {128256, 1, 4096, "lm head, decode"},
                          {14336, 32, 4096, "ffn_up, batch 32"},
                          {4096, 512, 4096, "attn_q, prefill 512"},
                          {14336, 2048, 4096, "ffn_up, prefill 2048"},
                          {8192, 8192, 8192, "square 8192"}};
  std::printf("\n%-22s %7s %6s %6s | %9s %8s | %9s %8s | %6s\n", "GEMM (bf16 weights)", "m", "n",
              "k", "ours TF/s", "ours GB/s", "cuBLAS TF", "cuBLAS GB", "ratio");
  std::mt19937 rng(5);
  for (const Shape& s : shapes) {
    const size_t w_elems = static_cast<size_t>(s.m) * s.k;
    std::vector<__nv_bfloat16> w_host(w_elems);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (auto& v : w_host) v = __float2bfloat16(d(rng));
    std::vector<float> x_host(static_cast<size_t>(s.n) * s.k);
    for (float& v : x_host) v = d(rng);
    ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::Allocate(w_elems * 2));
    ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::Allocate(x_host.size() * 4));
    ASSIGN_OR_RETURN(DeviceBuffer xb, DeviceBuffer::Allocate(x_host.size() * 2));
    ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::Allocate(static_cast<size_t>(s.m) * s.n * 4));
    CUDA_RETURN_IF_ERROR(cudaMemcpy(w.data(), w_host.data(), w_elems * 2, cudaMemcpyHostToDevice));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(x.data(), x_host.data(), x_host.size() * 4, cudaMemcpyHostToDevice));
    std::vector<__nv_bfloat16> xb_host(x_host.size());
    for (size_t i = 0; i < x_host.size(); ++i) xb_host[i] = __float2bfloat16(x_host[i]);
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(xb.data(), xb_host.data(), xb_host.size() * 2, cudaMemcpyHostToDevice));
    kernels::WeightMatrix wm;
    wm.dtype = kernels::DType::kBF16;
    wm.data = w.data();
    wm.rows = s.m;
    wm.cols = s.k;
    wm.row_bytes = static_cast<size_t>(s.k) * 2;
    const int reps = s.m * s.n * s.k > (int64_t{1} << 36) ? 10 : 50;
    ASSIGN_OR_RETURN(double ours, TimeMs(stream, reps, [&] {
      return kernels::cuda::MatMul(*blas, wm, x.as<float>(), s.n, y.as<float>(), stream);
    }));
    const float alpha = 1.0f, beta = 0.0f;
    ASSIGN_OR_RETURN(double theirs, TimeMs(stream, reps, [&]() -> absl::Status {
      CUBLAS_V2_RETURN_IF_ERROR(cublasGemmEx(raw, CUBLAS_OP_T, CUBLAS_OP_N, s.m, s.n, s.k, &alpha,
                                             w.data(), CUDA_R_16BF, s.k, xb.data(), CUDA_R_16BF,
                                             s.k, &beta, y.data(), CUDA_R_32F, s.m,
                                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return absl::OkStatus();
    }));
    const double flops = 2.0 * s.m * s.n * s.k;
    const double bytes = 2.0 * s.m * s.k + 4.0 * s.n * s.k + 4.0 * s.m * s.n;
    std::printf("%-22s %7ld %6ld %6ld | %9.1f %8.0f | %9.1f %8.0f | %6.2f\n", s.what, long(s.m),
                long(s.n), long(s.k), flops / (ours * 1e-3) / 1e12, bytes / (ours * 1e-3) / 1e9,
                flops / (theirs * 1e-3) / 1e12, bytes / (theirs * 1e-3) / 1e9, theirs / ours);
  }
  return absl::OkStatus();
}

absl::Status DecodeTable(const std::string& path, double copy_bw) {
  ASSIGN_OR_RETURN(auto file, GgufFile::Open(path));
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfigFromGguf(*file));
  ASSIGN_OR_RETURN(auto weights, ModelWeights::Load(*file, config, LayerRange{0, config.n_layer}));
  const int batch = absl::GetFlag(FLAGS_batch);
  const int steps = absl::GetFlag(FLAGS_steps);
  const int prompt = absl::GetFlag(FLAGS_prompt);
  const int blocks_per_seq = (prompt + steps + 8 + 15) / 16;
  CudaRunnerOptions options;
  options.kv_blocks = static_cast<int64_t>(blocks_per_seq) * batch;
  const auto load_start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(auto runner, CudaModelRunner::Create(*weights, options));
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const double bytes_per_token = static_cast<double>(runner->weight_bytes_read_per_token());
  std::printf("\nmodel %s: %d layers, %.2f GB on the device, %.2f GB read per token, loaded in "
              "%.1f s\n",
              path.c_str(), config.n_layer, runner->device_weight_bytes() / 1e9,
              bytes_per_token / 1e9, load_s);

  std::mt19937_64 rng(3);
  std::vector<SequenceStep> seqs(batch);
  for (int b = 0; b < batch; ++b) {
    SequenceStep& s = seqs[b];
    s.seq_id = b;
    s.block_table.resize(blocks_per_seq);
    std::iota(s.block_table.begin(), s.block_table.end(), b * blocks_per_seq);
    s.start_pos = 0;
    s.num_tokens = prompt;
    s.tokens.resize(prompt);
    for (int32_t& t : s.tokens) t = static_cast<int32_t>(rng() % config.vocab_size);
    s.logits = LogitsMode::kLast;
  }
  // Prefill every sequence (one at a time; prefill speed is reported too).
  StepOutput out;
  const auto prefill_start = std::chrono::steady_clock::now();
  for (int b = 0; b < batch; ++b) RETURN_IF_ERROR(runner->Forward({seqs[b]}, {}, &out));
  const double prefill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - prefill_start).count();

  // Batch 1: sequence 0 with greedy device sampling.
  kernels::cuda::SamplerWorkspace ws;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SequenceStep one = seqs[0];
  one.num_tokens = 1;
  one.start_pos = prompt;
  one.tokens = {1};
  auto decode_one = [&](int step) -> absl::Status {
    int64_t rows = 0;
    ASSIGN_OR_RETURN(const float* logits, runner->ForwardDevice({one}, {}, &rows));
    ASSIGN_OR_RETURN(SampledToken t, SampleOnDevice(ws, logits, config.vocab_size, greedy, {},
                                                    step, false, runner->stream()));
    one.tokens = {t.id};
    one.start_pos += 1;
    return absl::OkStatus();
  };
  for (int i = 0; i < 4; ++i) RETURN_IF_ERROR(decode_one(i));  // eager, capture, replay
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) RETURN_IF_ERROR(decode_one(4 + i));
  const double s1 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  // Batch N: every sequence advances one token per step (forward only).
  std::vector<SequenceStep> step(batch);
  for (int b = 0; b < batch; ++b) {
    step[b] = seqs[b];
    step[b].num_tokens = 1;
    step[b].start_pos = prompt;
    step[b].tokens = {2};
  }
  auto decode_batch = [&]() -> absl::Status {
    int64_t rows = 0;
    ASSIGN_OR_RETURN(const float* logits, runner->ForwardDevice(step, {}, &rows));
    static_cast<void>(logits);
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(runner->stream()));
    for (SequenceStep& s : step) s.start_pos = std::min(s.start_pos + 1, prompt + steps + 7);
    return absl::OkStatus();
  };
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(decode_batch());
  const auto tn = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) RETURN_IF_ERROR(decode_batch());
  const double sn = std::chrono::duration<double>(std::chrono::steady_clock::now() - tn).count();

  const double roofline = copy_bw / bytes_per_token;
  const double tok1 = steps / s1;
  std::printf("\n%-34s %12s\n", "decode", "value");
  std::printf("%-34s %12.1f\n", "prefill tok/s (per sequence)", batch * prompt / prefill_s);
  std::printf("%-34s %12.1f\n", "batch 1 tok/s (greedy, sampled)", tok1);
  std::printf("%-34s %12.1f\n", "HBM roofline tok/s", roofline);
  std::printf("%-34s %11.1f%%\n", "batch 1 / roofline", 100.0 * tok1 / roofline);
  std::printf("%-34s %12.2f\n", "batch 1 ms/token", 1e3 * s1 / steps);
  std::printf("%-34s %12.1f\n",
              absl::StrCat("batch ", batch, " tok/s (forward only)").c_str(), batch * steps / sn);
  std::printf("%-34s %12.2f\n", absl::StrCat("batch ", batch, " ms/step").c_str(),
              1e3 * sn / steps);
  std::printf("%-34s %12ld\n", "graph replays", long(runner->graph_replays()));
  std::printf("%-34s %12s\n", "graphs",
              runner->graph_status().ok() ? "on" : runner->graph_status().ToString().c_str());
  return absl::OkStatus();
}

absl::Status Main() {
  ASSIGN_OR_RETURN(kernels::cuda::Stream stream, kernels::cuda::Stream::Create());
  ASSIGN_OR_RETURN(double bw, CopyBandwidth(stream.get()));
  std::printf("device-to-device copy: %.0f GB/s (read + write)\n", bw / 1e9);
  RETURN_IF_ERROR(GemmTable(stream.get()));
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) {
    std::printf("\n(no --model: decode benchmarks skipped)\n");
    return absl::OkStatus();
  }
  return DecodeTable(model, bw);
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto device = tessera::kernels::cuda::ProbeDevice();
  if (!device.ok()) {
    std::printf("SKIPPED: %s\n", std::string(device.status().message()).c_str());
    return 0;
  }
  std::printf("device: %s (sm_%d%d, %d SMs)\n", device->name.c_str(), device->sm_major,
              device->sm_minor, device->multiprocessors);
  const absl::Status s = tessera::Main();
  if (!s.ok()) {
    std::fprintf(stderr, "tessera_cuda_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
