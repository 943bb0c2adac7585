// End to end: random models through CudaModelRunner against the CPU
// ModelRunner (the oracle), with F32 and BF16 weights and f32 and f16 KV
// caches:
//   - llama: SmolLM2-135M-shaped (30 layers, 576 wide, 9/3 heads, vocabulary
//     49152, tied embeddings);
//   - qwen2: Qwen2-0.5B widths and vocabulary (896 wide, 14/2 heads of 64,
//     4864 FFN, 151936 tied) with 4 layers: Q/K/V biases, rotate-half RoPE;
//   - glm4: GLM-4-9B widths (4096 wide, 32/2 heads of 128, RoPE on 64 dims,
//     13696 FFN, separate LM head) with 2 layers and the vocabulary cut to
//     32768: biases, post-norms, fused gate/up; the BF16 file also fuses Q/K/V.
//
// Before the device probe (so also on a machine without a GPU), host checks
// (generated_models_check.cc) confirm that the generator's qwen2 and glm4
// files load in the CPU engine with the features they were written with and
// run a finite forward step.
//
// Checks and bounds (relative error of a logit row: ||gpu - cpu|| / ||cpu||):
//   - prefill (chunks of 17, logits of every position) and teacher-forced
//     greedy decode: F32 weights < 1e-3 per row; BF16 weights <
//     Bf16RowBound(model), derived below (prefill products go through
//     cuBLASLt, which rounds activations to bf16; the CPU does not);
//   - greedy tokens: a pick that differs from the CPU's greedy pick needs
//     margin <= 2 * max |gpu - cpu| of that row (exact: the two picks' CPU
//     logits can be no further apart than their two errors);
//   - a step batching three sequences (7 tokens, decode-sized, so every
//     product runs Gemv) gives each bitwise the logits it gets alone;
//   - decode steps are replayed from CUDA graphs without changing results,
//     also after a longer prefill regrows the buffers a graph baked in
//     (bitwise equal to an eager runner at every step);
//   - a Q8_0 model runs against the CPU within Q8RowBound (below); formats
//     the GPU does not take are refused (cuda_matmul_test);
//   - two pipeline stages made by CreateStepRunner(--device cuda) on layers
//     [0, k) and [k, L), the first's hidden states fed to the second, give
//     bitwise the whole model's logits at every prefill and decode step, the
//     first stage's hidden states match the CPU runner's within the model's
//     bound, and a CPU stage feeding a CUDA stage gives the CPU model's
//     logits within it (the mixed pipeline, without gRPC).
// The qwen2 and glm4 models use the llama bounds (a first estimate too).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/cuda_sampler.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "engine/step_runner_factory.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/generated_models_check.h"
#include "tests/cuda/loaded_model.h"
#include "tests/cuda/random_model.h"

namespace tessera::cuda_test {
namespace {

using kernels::DType;


std::vector<float> Row(const std::vector<float>& logits, int64_t row, int64_t vocab) {
  return std::vector<float>(logits.begin() + row * vocab, logits.begin() + (row + 1) * vocab);
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// (best id, top-1 minus top-2 logit) with ties to the lower id.
std::pair<int32_t, float> Top(const std::vector<float>& row) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(row.size()); ++i) {
    if (row[i] > row[best]) best = i;
  }
  float second = -INFINITY;
  for (int32_t i = 0; i < static_cast<int32_t>(row.size()); ++i) {
    if (i != best) second = std::fmax(second, row[i]);
  }
  return {best, row[best] - second};
}

struct E2eCase {
  GgmlType type;
  DType kv;
  double row_tol;
};

// The BF16 row bound, from a model of the error: cuBLASLt rounds each
// product's input to bf16 (round to nearest even: relative error uniform in
// +-2^-9, RMS 2^-9 / sqrt(3)); with random weights a product's output then
// carries about that relative error, and the M = 7 * n_layer + 1 products on
// a token's path add in quadrature (the residual stream neither grows nor
// damps them much). A factor 3 covers what that ignores (correlated
// roundings, softmax and SwiGLU gains): sqrt(3 M) * 2^-9. SmolLM2's 30
// layers give 0.049; the 4-layer qwen2 model 0.021; the 2-layer glm4 0.015.
double Bf16RowBound(const ModelConfig& c) {
  return std::sqrt(3.0 * (7.0 * c.n_layer + 1.0)) * std::ldexp(1.0, -9);
}

// Q8_0 weights: the GPU multiplies the exactly decoded weights by float32
// activations (bf16-rounded ones in prefill), while the CPU rounds each
// product's input to int8 per block of 32: a uniform error of up to half a
// step of max|x|/127, which for Gaussian blocks (max ~2.3 sigma) is ~2^-7.6
// sigma in RMS, four to five times the bf16 rounding of Bf16RowBound. The
// same quadrature over M = 7 layers + 1 products and the same factor 3 give
// sqrt(3M) * 2^-7. Derived, not yet measured on a GPU.
double Q8RowBound(const ModelConfig& c) {
  return std::sqrt(3.0 * (7.0 * c.n_layer + 1.0)) * std::ldexp(1.0, -7);
}

void CheckModel(const LoadedModel& m, const E2eCase& c) {
  const ModelConfig& cfg = m.config;
  const int64_t vocab = cfg.vocab_size;
  const int64_t blocks = 64;
  KvCache cpu_kv(cfg, LayerRange{0, cfg.n_layer}, blocks, 16, c.kv);
  kernels::ThreadPool pool(
      static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 16)));
  ModelRunner cpu(m.weights.get(), &cpu_kv, &pool);
  CudaRunnerOptions options;
  options.kv_blocks = blocks;
  options.kv_dtype = c.kv;
  CUDA_TEST_ASSIGN_OR_FAIL(auto gpu, CudaModelRunner::Create(*m.weights, options));
  kernels::cuda::SamplerWorkspace ws;

  std::mt19937_64 rng(CaseSeed(2024));
  std::vector<int32_t> prompt(40);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % vocab);
  std::vector<int32_t> table(16);
  std::iota(table.begin(), table.end(), 20);  // blocks 20..35: not starting at 0
  double worst = 0.0;
  int checked_rows = 0;

  // Prefill in chunks of 17 with every position's logits.
  for (int32_t start = 0; start < static_cast<int32_t>(prompt.size()); start += 17) {
    SequenceStep s;
    s.seq_id = 1;
    s.start_pos = start;
    s.num_tokens = std::min<int32_t>(17, prompt.size() - start);
    s.tokens.assign(prompt.begin() + start, prompt.begin() + start + s.num_tokens);
    s.block_table = table;
    s.logits = LogitsMode::kAll;
    StepOutput cpu_out, gpu_out;
    CUDA_TEST_ASSERT_OK(cpu.Forward({s}, {}, &cpu_out));
    CUDA_TEST_ASSERT_OK(gpu->Forward({s}, {}, &gpu_out));
    CUDA_TEST_CHECK(gpu_out.logit_rows == cpu_out.logit_rows, "rows %ld vs %ld",
                    long(gpu_out.logit_rows), long(cpu_out.logit_rows));
    for (int64_t r = 0; r < cpu_out.logit_rows; ++r) {
      const double e = RelativeError(Row(gpu_out.logits, r, vocab), Row(cpu_out.logits, r, vocab));
      worst = std::fmax(worst, e);
      ++checked_rows;
      CUDA_TEST_CHECK(e < c.row_tol, "prefill position %ld: row error %.3e (bound %.0e)",
                      long(start + r), e, c.row_tol);
    }
  }

  // Teacher-forced greedy decode: both get the CPU's token each step.
  int32_t next = prompt.back();
  int flips = 0;
  // Step 0 re-runs the last prompt position (rewriting its KV, with the same
  // values up to rounding: the prefill chunk and this decode step may take
  // different product paths) to get the logits that pick the first token.
  StepOutput cpu_out;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.repetition_penalty = 1.0f;
  for (int step = 0; step < 24; ++step) {
    SequenceStep s;
    s.seq_id = 1;
    s.start_pos = static_cast<int32_t>(prompt.size()) - 1 + step;
    s.num_tokens = 1;
    s.tokens = {next};
    s.block_table = table;
    CUDA_TEST_ASSERT_OK(cpu.Forward({s}, {}, &cpu_out));
    int64_t rows = 0;
    CUDA_TEST_ASSIGN_OR_FAIL(const float* dlogits, gpu->ForwardDevice({s}, {}, &rows));
    CUDA_TEST_ASSIGN_OR_FAIL(SampledToken g, SampleOnDevice(ws, dlogits, vocab, greedy, {}, step,
                                                            false, gpu->stream()));
    std::vector<float> gpu_row(vocab);
    CUDA_TEST_ASSERT_OK(cudaMemcpy(gpu_row.data(), dlogits, vocab * sizeof(float),
                                   cudaMemcpyDeviceToHost) == cudaSuccess
                            ? absl::OkStatus()
                            : absl::InternalError("cudaMemcpy logits"));
    const std::vector<float> cpu_row = Row(cpu_out.logits, 0, vocab);
    const double e = RelativeError(gpu_row, cpu_row);
    worst = std::fmax(worst, e);
    ++checked_rows;
    CUDA_TEST_CHECK(e < c.row_tol, "decode step %d: row error %.3e (bound %.0e)", step, e,
                    c.row_tol);
    const auto [cpu_id, margin] = Top(cpu_row);
    if (g.id != cpu_id) {
      ++flips;
      // The CPU logits of the two picks differ by at most their two errors.
      const double gap = cpu_row[cpu_id] - cpu_row[g.id];
      CUDA_TEST_CHECK(gap <= 2 * MaxAbsDiff(gpu_row, cpu_row) + 1e-6,
                      "step %d: GPU picked %d, CPU %d (top-2 margin %.4f, their gap %.4f) beyond "
                      "twice the largest logit error",
                      step, g.id, cpu_id, margin, gap);
    }
    next = cpu_id;
  }
  CUDA_TEST_CHECK(gpu->graph_status().ok(), "graphs disabled: %s",
                  gpu->graph_status().ToString().c_str());
  CUDA_TEST_CHECK(gpu->graph_replays() > 0, "no decode step was replayed from a graph");
  std::printf("  %s weights, %s KV: %d rows, worst row error %.3e (bound %.3e), %d greedy flips, "
              "%ld graph replays\n",
              GgmlTypeName(c.type), kernels::DTypeName(c.kv), checked_rows, worst, c.row_tol,
              flips, long(gpu->graph_replays()));
}

// Three sequences in one step (one decoding, one prefilling, one decoding
// with a long history) give each bitwise the logits it gets alone: the step
// has 7 tokens, so every product runs Gemv, whose sums do not depend on the
// token count, and every other op works row by row.
void CheckBatchIndependence(const LoadedModel& m) {
  const ModelConfig& cfg = m.config;
  const int64_t vocab = cfg.vocab_size;
  CudaRunnerOptions options;
  options.kv_blocks = 96;
  options.graph_max_tokens = 0;
  CUDA_TEST_ASSIGN_OR_FAIL(auto alone, CudaModelRunner::Create(*m.weights, options));
  CUDA_TEST_ASSIGN_OR_FAIL(auto batched, CudaModelRunner::Create(*m.weights, options));
  std::mt19937_64 rng(CaseSeed(99));
  const int history[3] = {5, 0, 70};
  const int step_tokens[3] = {1, 5, 1};
  std::vector<SequenceStep> prefix, step;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> table(8);
    std::iota(table.begin(), table.end(), 30 * i);
    if (history[i] > 0) {
      SequenceStep h;
      h.seq_id = i;
      h.start_pos = 0;
      h.num_tokens = history[i];
      for (int t = 0; t < history[i]; ++t) h.tokens.push_back(rng() % vocab);
      h.block_table = table;
      h.logits = LogitsMode::kNone;
      prefix.push_back(h);
    }
    SequenceStep s;
    s.seq_id = i;
    s.start_pos = history[i];
    s.num_tokens = step_tokens[i];
    for (int t = 0; t < step_tokens[i]; ++t) s.tokens.push_back(rng() % vocab);
    s.block_table = table;
    s.logits = LogitsMode::kLast;
    step.push_back(s);
  }
  StepOutput ignored, together;
  for (const SequenceStep& h : prefix) {
    CUDA_TEST_ASSERT_OK(alone->Forward({h}, {}, &ignored));
    CUDA_TEST_ASSERT_OK(batched->Forward({h}, {}, &ignored));
  }
  CUDA_TEST_ASSERT_OK(batched->Forward(step, {}, &together));
  CUDA_TEST_CHECK(together.logit_rows == 3, "%ld rows", long(together.logit_rows));
  for (int i = 0; i < 3; ++i) {
    StepOutput one;
    CUDA_TEST_ASSERT_OK(alone->Forward({step[i]}, {}, &one));
    const std::vector<float> a = Row(together.logits, i, vocab), b = Row(one.logits, 0, vocab);
    CUDA_TEST_CHECK(BitwiseMismatches(a, b) == 0,
                    "sequence %d: batched vs alone differ in %ld logits (relative %.3e)", i,
                    long(BitwiseMismatches(a, b)), RelativeError(a, b));
  }
}

// The sequence that once replayed a graph into freed memory: prefill 20
// tokens, capture a step, prefill 25 (MatMul's 16-bit conversion scratch
// used to regrow to exactly 25 tokens' worth, moving under the captured
// graph), run the step again; then a prefill of 64 that does move the
// runner's buffers. The captured shape is a 12-token step, which goes
// through cuBLASLt and so through the conversion scratch (decode-sized steps
// run Gemv and never touch it). A runner replaying graphs must give bitwise
// the logits of an eager one at every step, and must drop its graphs when
// buffers move.
void GraphReplaySurvivesScratchRegrowth(const LoadedModel& m) {
  const int64_t vocab = m.config.vocab_size;
  CudaRunnerOptions eager_options;
  eager_options.kv_blocks = 64;
  eager_options.graph_max_tokens = 0;
  CudaRunnerOptions graph_options = eager_options;
  graph_options.graph_max_tokens = 16;
  CUDA_TEST_ASSIGN_OR_FAIL(auto eager, CudaModelRunner::Create(*m.weights, eager_options));
  CUDA_TEST_ASSIGN_OR_FAIL(auto graphed, CudaModelRunner::Create(*m.weights, graph_options));
  std::mt19937_64 rng(CaseSeed(7));
  auto tokens = [&](int n) {
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
    return t;
  };
  int32_t pos[4] = {0, 0, 0, 0};
  auto step = [&](int seq, std::vector<int32_t> toks) {
    SequenceStep s;
    s.seq_id = seq;
    s.start_pos = pos[seq];
    s.num_tokens = static_cast<int32_t>(toks.size());
    s.tokens = std::move(toks);
    s.block_table.resize(12);
    std::iota(s.block_table.begin(), s.block_table.end(), 12 * seq);
    s.logits = LogitsMode::kLast;
    pos[seq] += s.num_tokens;
    return s;
  };
  int n = 0;
  auto run_both = [&](const SequenceStep& s, const char* what) {
    StepOutput a, b;
    CUDA_TEST_ASSERT_OK(eager->Forward({s}, {}, &a));
    CUDA_TEST_ASSERT_OK(graphed->Forward({s}, {}, &b));
    CUDA_TEST_CHECK(a.logits.size() == b.logits.size() &&
                        std::memcmp(a.logits.data(), b.logits.data(),
                                    a.logits.size() * sizeof(float)) == 0,
                    "step %d (%s): graph replay differs from eager (max |d| %.3e)", n, what,
                    MaxAbsDiff(a.logits, b.logits));
    ++n;
  };
  run_both(step(0, tokens(20)), "prefill 20");
  // Sequence 1 advances 12 tokens a step: the first is eager, the second
  // captured, the third replayed.
  for (int i = 0; i < 3; ++i) run_both(step(1, tokens(12)), "12-token step");
  const int64_t replays_before = graphed->graph_replays();
  run_both(step(2, tokens(25)), "prefill 25");
  for (int i = 0; i < 2; ++i) run_both(step(1, tokens(12)), "12-token step after prefill 25");
  CUDA_TEST_CHECK(graphed->graph_replays() > replays_before,
                  "the 12-token graph was not replayed after the 25-token prefill");
  const int64_t dropped_before = graphed->graph_invalidations();
  run_both(step(3, tokens(64)), "prefill 64");
  for (int i = 0; i < 3; ++i) run_both(step(1, tokens(12)), "12-token step after prefill 64");
  for (int i = 0; i < 3; ++i) run_both(step(0, tokens(1)), "decode");
  CUDA_TEST_CHECK(graphed->graph_status().ok(), "graphs disabled: %s",
                  graphed->graph_status().ToString().c_str());
  CUDA_TEST_CHECK(graphed->graph_invalidations() > dropped_before,
                  "the 64-token prefill moved buffers but no graph was dropped");
  std::printf("  graph replays %ld, invalidations %ld, all %d steps bitwise equal to eager\n",
              long(graphed->graph_replays()), long(graphed->graph_invalidations()), n);
}

// A model split in two CUDA pipeline stages through the factory, as
// `tessera-worker --device cuda` builds them, against the whole model on one
// runner (bitwise: the hidden states cross in f32, and the kernels are the
// same), and the first stage's hidden states against the CPU runner's.
void LayerRangeStagesMatchWholeModel(const LoadedModel& m, double bound) {
  const ModelConfig& cfg = m.config;
  const int64_t vocab = cfg.vocab_size;
  const int k = cfg.n_layer / 2;
  RunnerOptions ro;
  ro.device.kind = Device::Kind::kCuda;
  ro.kv_blocks = 32;
  ro.kv_block_size = 16;
  CUDA_TEST_ASSIGN_OR_FAIL(auto whole,
                           CreateStepRunner(*m.file, cfg, LayerRange{0, cfg.n_layer}, ro));
  CUDA_TEST_ASSIGN_OR_FAIL(auto first, CreateStepRunner(*m.file, cfg, LayerRange{0, k}, ro));
  CUDA_TEST_ASSIGN_OR_FAIL(auto second,
                           CreateStepRunner(*m.file, cfg, LayerRange{k, cfg.n_layer}, ro));
  CUDA_TEST_CHECK(first->device() == "cuda:0", "device %s", first->device().c_str());
  kernels::ThreadPool pool(4);
  CUDA_TEST_ASSIGN_OR_FAIL(auto cpu_weights, ModelWeights::Load(*m.file, cfg, LayerRange{0, k}));
  KvCache cpu_kv(cfg, LayerRange{0, k}, 32, 16);
  ModelRunner cpu(cpu_weights.get(), &cpu_kv, &pool);
  // A mixed pipeline, CPU stage 0 into a CUDA stage 1 (what a CPU worker
  // and a --device cuda worker do), against the CPU whole model.
  RunnerOptions gpu_second = ro;
  CUDA_TEST_ASSIGN_OR_FAIL(auto mixed_second,
                           CreateStepRunner(*m.file, cfg, LayerRange{k, cfg.n_layer}, gpu_second));
  RunnerOptions cpu_ro = ro;
  cpu_ro.device = Device{};
  cpu_ro.threads = 4;
  CUDA_TEST_ASSIGN_OR_FAIL(auto cpu_whole,
                           CreateStepRunner(*m.file, cfg, LayerRange{0, cfg.n_layer}, cpu_ro));
  std::mt19937_64 rng(CaseSeed(11));
  SequenceStep s;
  s.seq_id = 1;
  s.block_table.resize(8);
  std::iota(s.block_table.begin(), s.block_table.end(), 0);
  for (int step = 0; step < 4; ++step) {
    s.num_tokens = step == 0 ? 20 : 1;
    s.tokens.clear();
    for (int t = 0; t < s.num_tokens; ++t) s.tokens.push_back(static_cast<int32_t>(rng() % vocab));
    s.logits = step == 0 ? LogitsMode::kAll : LogitsMode::kLast;
    StepOutput a, h, b, c;
    CUDA_TEST_ASSERT_OK(whole->Forward({s}, {}, &a));
    CUDA_TEST_ASSERT_OK(first->Forward({s}, {}, &h));
    CUDA_TEST_CHECK(h.logit_rows == 0 &&
                        h.hidden.size() == static_cast<size_t>(s.num_tokens) * cfg.n_embd,
                    "step %d: the first stage returned %ld logit rows, %zu hidden floats", step,
                    long(h.logit_rows), h.hidden.size());
    SequenceStep later = s;
    later.tokens.clear();  // later stages take hidden states
    CUDA_TEST_ASSERT_OK(second->Forward({later}, h.hidden, &b));
    CUDA_TEST_CHECK(a.logits.size() == b.logits.size() && BitwiseMismatches(a.logits, b.logits) == 0,
                    "step %d: two CUDA stages differ from the whole model in %ld logits (max "
                    "|d| %.3e)",
                    step, long(BitwiseMismatches(a.logits, b.logits)),
                    MaxAbsDiff(a.logits, b.logits));
    CUDA_TEST_ASSERT_OK(cpu.Forward({s}, {}, &c));
    CUDA_TEST_CHECK(RelativeError(h.hidden, c.hidden) < bound,
                    "step %d: stage 0's hidden states vs the CPU's: relative error %.3e (bound "
                    "%.1e)",
                    step, RelativeError(h.hidden, c.hidden), bound);
    StepOutput mixed, reference;
    CUDA_TEST_ASSERT_OK(mixed_second->Forward({later}, c.hidden, &mixed));
    CUDA_TEST_ASSERT_OK(cpu_whole->Forward({s}, {}, &reference));
    for (int64_t r = 0; r < reference.logit_rows; ++r) {
      const std::vector<float> g = Row(mixed.logits, r, vocab), w = Row(reference.logits, r, vocab);
      CUDA_TEST_CHECK(RelativeError(g, w) < bound,
                      "step %d row %ld: CPU stage + CUDA stage vs the CPU model: relative error "
                      "%.3e (bound %.1e)",
                      step, long(r), RelativeError(g, w), bound);
    }
    s.start_pos += s.num_tokens;
  }
  std::printf("  two CUDA stages [0, %d) + [%d, %d): bitwise the whole model over 4 steps\n", k,
              k, cfg.n_layer);
}


void F32ModelMatchesCpu() {
  CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m, WriteAndLoad(testing::SmolLM2_135MShape(), GgmlType::kF32,
                                                       ModelDir() + "/smollm2_f32.gguf"));
  CheckModel(m, {GgmlType::kF32, DType::kF32, 1e-3});
  CheckBatchIndependence(m);
  LayerRangeStagesMatchWholeModel(m, 1e-3);
}

void Bf16ModelMatchesCpu() {
  CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m, WriteAndLoad(testing::SmolLM2_135MShape(),
                                                       GgmlType::kBF16,
                                                       ModelDir() + "/smollm2_bf16.gguf"));
  CheckModel(m, {GgmlType::kBF16, DType::kF32, Bf16RowBound(m.config)});
  CheckModel(m, {GgmlType::kBF16, DType::kF16, Bf16RowBound(m.config)});
  GraphReplaySurvivesScratchRegrowth(m);
}

void Qwen2ModelMatchesCpu() {
  testing::RandomModelShape shape = testing::Qwen2_0_5BShape();
  shape.n_layer = 4;
  {
    CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m,
                             WriteAndLoad(shape, GgmlType::kF32, ModelDir() + "/qwen2_f32.gguf"));
    CheckModel(m, {GgmlType::kF32, DType::kF32, 1e-3});
    CheckBatchIndependence(m);
  }
  CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m,
                           WriteAndLoad(shape, GgmlType::kBF16, ModelDir() + "/qwen2_bf16.gguf"));
  CheckModel(m, {GgmlType::kBF16, DType::kF16, Bf16RowBound(m.config)});
}

void Glm4ModelMatchesCpu() {
  testing::RandomModelShape shape = testing::Glm4_9BShape();
  shape.n_layer = 2;
  shape.vocab = 32768;
  {
    CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m,
                             WriteAndLoad(shape, GgmlType::kF32, ModelDir() + "/glm4_f32.gguf"));
    CheckModel(m, {GgmlType::kF32, DType::kF32, 1e-3});
    CheckBatchIndependence(m);
    LayerRangeStagesMatchWholeModel(m, 1e-3);
  }
  shape.fused_qkv = true;
  CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m, WriteAndLoad(shape, GgmlType::kBF16,
                                                       ModelDir() + "/glm4_qkv_bf16.gguf"));
  CUDA_TEST_CHECK(m.config.fused_qkv, "the glm4 BF16 model was loaded without fused Q/K/V");
  CheckModel(m, {GgmlType::kBF16, DType::kF16, Bf16RowBound(m.config)});
}

// Q8_0 weights stay quantised on the device (Gemv decodes them; prefill
// widens them to BF16 per product): the model follows the CPU.
void Q8ModelMatchesCpu() {
  testing::RandomModelShape small = testing::SmolLM2_135MShape();
  small.n_layer = 2;
  small.vocab = 512;
  CUDA_TEST_ASSIGN_OR_FAIL(LoadedModel m, WriteAndLoad(small, GgmlType::kQ8_0,
                                                       ModelDir() + "/small_q8_0.gguf"));
  CheckModel(m, {GgmlType::kQ8_0, DType::kF32, Q8RowBound(m.config)});
}

}  // namespace
}  // namespace tessera::cuda_test

int main() {
  using namespace tessera::cuda_test;
  const int rc = RunCudaTests(
      "cuda_runner_test", {{"GeneratedModelsLoadInCpuEngine", GeneratedModelsLoadInCpuEngine}},
      {{"F32ModelMatchesCpu", F32ModelMatchesCpu},
       {"Bf16ModelMatchesCpu", Bf16ModelMatchesCpu},
       {"Qwen2ModelMatchesCpu", Qwen2ModelMatchesCpu},
       {"Glm4ModelMatchesCpu", Glm4ModelMatchesCpu},
       {"Q8ModelMatchesCpu", Q8ModelMatchesCpu}});
  // The model files were unlinked as they were loaded; only the directory is left.
  rmdir(ModelDir().c_str());
  return rc;
}
