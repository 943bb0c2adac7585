// tessera_cpu_bench: CPU speed of the engine's forward pass on one GGUF, for
// bench/cpu_vs_llamacpp.py to set next to llama.cpp. Drives ModelRunner
// directly (no tokenizer, no sampler) so what is timed is the forward pass.
//
//   tessera_cpu_bench --model PATH --threads N --mode MODE [--batch B] [--rounds R]
//
// Modes (each prints one JSON line per round on stdout):
//   decode     32-token prompt, then 128 single-token steps (batch 1); decode
//              tok/s plus weight bytes read per token and the GB/s that implies.
//   prefill    one 512-token prompt in one step; prefill tok/s.
//   batch      --batch B sequences, each a 16-token prompt (untimed), then 32
//              steps of one token per sequence; aggregate tok/s.
//   bandwidth  read bandwidth: a streaming sum over 1 GiB split over the
//              threads, best of several passes.
//   stages     what a pipeline stage pays per step, split by tensor role: runs
//              the ranges [0, 10), [0, 20) and [L-10, L) as the stages of a
//              pipeline would (later ranges take hidden states), --batch B
//              sequences decoding one token each at a 32-token context, and
//              one 128-token prefill chunk (logits for its last token only).
//              Prints the time of one layer ((t[0,20) - t[0,10)) / 10) and of
//              the LM head (t[L-10,L) - t[0,10)), with the bytes each reads,
//              so the planner's per-byte costs (coordinator/planner.cc) can
//              be checked on any machine. Ranges of 10+ layers keep the
//              weights larger than the cache, as real stages are.
//   finite     what the stages' NaN/Inf guard (engine/finite_check.h) costs:
//              the time of FirstNonFinite over what a receiving stage checks
//              per step (n_embd floats per token in, one vocab logits row
//              out) against a decode step and a 512-token prefill of the
//              whole model, both measured in the same run.
//   matmul     MatMul alone for every storage type the kernels take, on
//              1536 x 1536 matrices cycled through 64+ MB (so, like a stage,
//              the weights come from DRAM), --batch tokens; ns per weight
//              and per byte, and per-byte cost relative to Q4_1.
// Token ids are synthetic (TokenAt) and the same ones cpu_vs_llamacpp.py
// feeds llama.cpp, so both see the same work.
//
// Single-threaded driver; the pool does the parallel work.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/safetensors/model_source.h"
#include "common/model_config.h"
#include "engine/finite_check.h"
#include "engine/kv_cache.h"
#include "engine/model_runner.h"
#include "engine/model_weights.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Deterministic token ids that avoid the special tokens at the start of the
// vocabulary; mirrored in cpu_vs_llamacpp.py.
int32_t TokenAt(int64_t seq, int64_t i) {
  return static_cast<int32_t>(100 + (i * 7919 + seq * 104729) % 30000);
}

struct Options {
  std::string model;
  int threads = 2;
  std::string mode = "decode";
  int batch = 8;
  int rounds = 1;
};

// Each pass of the pool reads its share of `buf` once, summing 64-bit words
// into independent accumulators so the loop is bound by loads, not adds.
double MeasureBandwidth(kernels::ThreadPool* pool) {
  const size_t bytes = size_t{1} << 30;
  const size_t words = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(words);
  pool->ParallelFor(static_cast<int64_t>(words), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  std::vector<uint64_t> sums(64 * 64, 0);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const double t0 = Now();
    pool->ParallelFor(static_cast<int64_t>(words), 1 << 16, [&](int64_t b, int64_t e) {
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        a0 += buf[i];
        a1 += buf[i + 1];
        a2 += buf[i + 2];
        a3 += buf[i + 3];
        a4 += buf[i + 4];
        a5 += buf[i + 5];
        a6 += buf[i + 6];
        a7 += buf[i + 7];
      }
      for (; i < e; ++i) a0 += buf[i];
      // One slot per chunk start, on separate cache lines, keeps the sum live.
      sums[(b / (1 << 16)) % 64 * 64] += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    });
    best = std::max(best, static_cast<double>(bytes) / (Now() - t0));
  }
  uint64_t keep = 0;
  for (uint64_t s : sums) keep += s;
  if (keep == 42) std::fprintf(stderr, " ");
  return best;
}

uint64_t MatrixBytes(const kernels::WeightMatrix& w) {
  return static_cast<uint64_t>(w.rows) * w.row_bytes;
}

// Weight bytes one decode step must read: every layer matrix and norm, the
// final norm and the LM head, plus one embedding row.
uint64_t BytesPerDecodedToken(const ModelWeights& w) {
  const ModelConfig& c = w.config();
  uint64_t total = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layer(l);
    for (const kernels::WeightMatrix* m :
         {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      total += MatrixBytes(*m);
    }
    total += 2 * sizeof(float) * static_cast<uint64_t>(c.n_embd);
  }
  total += sizeof(float) * static_cast<uint64_t>(c.n_embd);
  total += MatrixBytes(w.output());
  total += w.token_embedding().row_bytes;
  return total;
}

// Median seconds of one Forward of `steps` on layers `range`, over `reps`
// repetitions after one warm-up. Decode steps rewrite the KV row at the same
// position each time, so every repetition does the same work.
double TimeRange(const GgufFile& file, const ModelConfig& config, LayerRange range,
                 const std::vector<SequenceStep>& steps, int64_t context_blocks,
                 kernels::ThreadPool* pool, int reps) {
  auto weights = ModelWeights::Load(file, config, range);
  if (!weights.ok()) {
    std::fprintf(stderr, "%s\n", weights.status().ToString().c_str());
    std::exit(1);
  }
  KvCache kv(config, range, context_blocks * static_cast<int64_t>(steps.size()),
             KvCache::kDefaultBlockSize);
  ModelRunner runner(weights->get(), &kv, pool);
  int64_t tokens = 0;
  for (const SequenceStep& s : steps) tokens += s.num_tokens;
  // Later stages take hidden states; any finite values cost the same.
  std::vector<float> hidden;
  if (range.begin > 0) {
    hidden.resize(static_cast<size_t>(tokens) * config.n_embd);
    for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = 0.01f * static_cast<float>(i % 97);
  }
  StepOutput out;
  std::vector<double> times;
  for (int r = 0; r <= reps; ++r) {
    const double t0 = Now();
    absl::Status st = runner.Forward(steps, hidden, &out);
    const double dt = Now() - t0;
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      std::exit(1);
    }
    if (r > 0) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

uint64_t LayerBytes(const LayerWeights& lw, const ModelConfig& c) {
  uint64_t b = 2 * sizeof(float) * static_cast<uint64_t>(c.n_embd);
  for (const kernels::WeightMatrix* m :
       {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
    b += MatrixBytes(*m);
  }
  return b;
}

int StagesMode(const GgufFile& file, const ModelConfig& config, int batch, int threads,
               kernels::ThreadPool* pool, int rounds) {
  const int L = config.n_layer;
  if (L < 20) {
    std::fprintf(stderr, "stages mode needs a model of at least 20 layers\n");
    return 2;
  }
  const int bs = KvCache::kDefaultBlockSize;
  auto full = ModelWeights::Load(file, config, LayerRange{0, L});
  if (!full.ok()) {
    std::fprintf(stderr, "%s\n", full.status().ToString().c_str());
    return 1;
  }
  const uint64_t layer_bytes = LayerBytes((*full)->layer(0), config);
  const uint64_t head_bytes =
      MatrixBytes((*full)->output()) + sizeof(float) * static_cast<uint64_t>(config.n_embd);

  struct Phase {
    const char* name;
    int seqs, start, tokens;
  };
  const Phase phases[] = {{"decode", batch, 32, 1}, {"prefill", 1, 0, 128}};
  for (int r = 0; r < rounds; ++r) {
    for (const Phase& ph : phases) {
      const int64_t blocks = (ph.start + ph.tokens + bs - 1) / bs;
      std::vector<SequenceStep> steps(ph.seqs);
      for (int s = 0; s < ph.seqs; ++s) {
        SequenceStep& st = steps[s];
        st.seq_id = s;
        st.start_pos = ph.start;
        st.num_tokens = ph.tokens;
        for (int i = 0; i < ph.tokens; ++i) st.tokens.push_back(TokenAt(s, ph.start + i));
        for (int64_t b = 0; b < blocks; ++b) st.block_table.push_back(s * blocks + b);
        st.logits = LogitsMode::kLast;
      }
      const int reps = ph.tokens > 1 ? 5 : 21;
      const double first10 = TimeRange(file, config, LayerRange{0, 10}, steps, blocks, pool, reps);
      const double first20 = TimeRange(file, config, LayerRange{0, 20}, steps, blocks, pool, reps);
      const double last10 = TimeRange(file, config, LayerRange{L - 10, L}, steps, blocks, pool, reps);
      const double layer_s = (first20 - first10) / 10;
      const double head_s = last10 - first10;
      std::printf(
          "{\"mode\":\"stages\",\"phase\":\"%s\",\"threads\":%d,\"seqs\":%d,"
          "\"tokens_per_seq\":%d,\"layer_us\":%.1f,\"head_us\":%.1f,\"layer_bytes\":%llu,"
          "\"head_bytes\":%llu,\"layer_ns_per_kb\":%.2f,\"head_ns_per_kb\":%.2f,"
          "\"head_per_byte_vs_layer\":%.3f}\n",
          ph.name, threads, ph.seqs, ph.tokens, layer_s * 1e6, head_s * 1e6,
          static_cast<unsigned long long>(layer_bytes),
          static_cast<unsigned long long>(head_bytes), layer_s * 1e12 / layer_bytes,
          head_s * 1e12 / head_bytes,
          (head_s / head_bytes) / (layer_s / layer_bytes));
      std::fflush(stdout);
    }
  }
  return 0;
}

int MatMulMode(int tokens, int threads, kernels::ThreadPool* pool, int rounds) {
  using kernels::DType;
  const int64_t n = 1536;
  const DType types[] = {DType::kQ4_1, DType::kQ8_0, DType::kQ4_0, DType::kQ5_0,
                         DType::kQ5_1, DType::kIQ4_NL, DType::kQ2_K, DType::kQ3_K,
                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_XS,
                         DType::kF16,  DType::kBF16, DType::kF32};
  std::vector<float> x(static_cast<size_t>(tokens) * n), y(static_cast<size_t>(tokens) * n);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 101) - 0.5f;
  for (int r = 0; r < rounds; ++r) {
    double q41_ns_per_byte = 0;
    for (DType t : types) {
      const size_t row_bytes = kernels::RowBytes(t, n);
      const size_t matrix_bytes = row_bytes * n;
      const size_t copies = std::max<size_t>(2, ((size_t{64} << 20) + matrix_bytes - 1) / matrix_bytes);
      // 0x11 in every byte is a valid block of every format: small normal
      // scales (no subnormal slow paths) and mid-range quants.
      std::vector<uint8_t> data(matrix_bytes * copies, 0x11);
      auto run_all = [&] {
        for (size_t c = 0; c < copies; ++c) {
          kernels::WeightMatrix w{t, data.data() + c * matrix_bytes, n, n, row_bytes};
          kernels::MatMul(w, x.data(), tokens, y.data(), pool);
        }
      };
      run_all();  // warm-up: page in, size scratch
      std::vector<double> times;
      for (int k = 0; k < 5; ++k) {
        const double t0 = Now();
        run_all();
        times.push_back((Now() - t0) / static_cast<double>(copies));
      }
      std::sort(times.begin(), times.end());
      const double s_per_matrix = times[times.size() / 2];
      const double ns_per_byte = s_per_matrix * 1e9 / static_cast<double>(matrix_bytes);
      if (t == DType::kQ4_1) q41_ns_per_byte = ns_per_byte;
      std::printf(
          "{\"mode\":\"matmul\",\"dtype\":\"%s\",\"threads\":%d,\"tokens\":%d,"
          "\"us_per_matrix\":%.1f,\"ns_per_weight\":%.4f,\"ns_per_byte\":%.4f,"
          "\"per_byte_vs_q4_1\":%.3f}\n",
          kernels::DTypeName(t), threads, tokens, s_per_matrix * 1e6,
          s_per_matrix * 1e9 / static_cast<double>(n * n), ns_per_byte,
          ns_per_byte / q41_ns_per_byte);
      std::fflush(stdout);
    }
  }
  return 0;
}

// Median seconds of `fn` over `reps` calls after one warm-up.
template <typename Fn>
double Median(int reps, Fn fn) {
  std::vector<double> times;
  for (int r = 0; r <= reps; ++r) {
    const double t0 = Now();
    fn();
    if (r > 0) times.push_back(Now() - t0);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int FiniteMode(const ModelWeights& w, kernels::ThreadPool* pool, int threads, int rounds) {
  const ModelConfig& c = w.config();
  const int bs = KvCache::kDefaultBlockSize;
  const int prompt = 512;
  const int blocks = (prompt + 64 + bs - 1) / bs;
  KvCache kv(c, LayerRange{0, c.n_layer}, blocks, bs);
  ModelRunner runner(&w, &kv, pool);
  SequenceStep prefill;
  prefill.seq_id = 1;
  prefill.num_tokens = prompt;
  for (int i = 0; i < prompt; ++i) prefill.tokens.push_back(TokenAt(1, i));
  for (int b = 0; b < blocks; ++b) prefill.block_table.push_back(b);
  prefill.logits = LogitsMode::kLast;
  SequenceStep decode = prefill;
  decode.start_pos = prompt;
  decode.num_tokens = 1;
  decode.tokens = {TokenAt(1, prompt)};
  StepOutput out;
  auto run = [&](const SequenceStep& s) {
    absl::Status st = runner.Forward({s}, {}, &out);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      std::exit(1);
    }
  };
  std::vector<float> hidden(static_cast<size_t>(prompt) * c.n_embd);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = 0.01f * static_cast<float>(i % 97);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size), 0.5f);
  int64_t sink = 0;
  for (int r = 0; r < rounds; ++r) {
    const double prefill_s = Median(3, [&] { run(prefill); });
    const double decode_s = Median(32, [&] { run(decode); });
    // Repeated inside the timing so the clock's resolution does not matter.
    const int kInner = 1000;
    const double check_decode_s = Median(5, [&] {
      for (int i = 0; i < kInner; ++i) {
        sink += FirstNonFinite(absl::MakeConstSpan(hidden.data(), c.n_embd));
        sink += FirstNonFinite(logits);
      }
    }) / kInner;
    const double check_prefill_s = Median(5, [&] {
      for (int i = 0; i < kInner / 10; ++i) {
        sink += FirstNonFinite(hidden);
        sink += FirstNonFinite(logits);
      }
    }) / (kInner / 10);
    std::printf(
        "{\"mode\":\"finite\",\"threads\":%d,\"decode_step_us\":%.1f,\"decode_check_us\":%.2f,"
        "\"decode_overhead_pct\":%.3f,\"prefill_step_ms\":%.1f,\"prefill_check_us\":%.2f,"
        "\"prefill_overhead_pct\":%.4f}\n",
        threads, decode_s * 1e6, check_decode_s * 1e6, 100 * check_decode_s / decode_s,
        prefill_s * 1e3, check_prefill_s * 1e6, 100 * check_prefill_s / prefill_s);
    std::fflush(stdout);
  }
  if (sink == 42) std::fprintf(stderr, " ");
  return 0;
}

struct Seq {
  SequenceStep step;
  int32_t next = 0;
};

int Argmax(const float* v, int64_t n) {
  return static_cast<int>(std::max_element(v, v + n) - v);
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--model") o.model = v;
    else if (k == "--threads") o.threads = std::atoi(v);
    else if (k == "--mode") o.mode = v;
    else if (k == "--batch") o.batch = std::atoi(v);
    else if (k == "--rounds") o.rounds = std::atoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  kernels::ThreadPool pool(o.threads);
  if (o.mode == "bandwidth") {
    for (int r = 0; r < o.rounds; ++r) {
      std::printf("{\"mode\":\"bandwidth\",\"threads\":%d,\"gbps\":%.3f}\n", o.threads,
                  MeasureBandwidth(&pool) / 1e9);
      std::fflush(stdout);
    }
    return 0;
  }
  if (o.mode == "matmul") return MatMulMode(o.batch, o.threads, &pool, o.rounds);
  auto file = OpenModelFile(o.model);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
    return 1;
  }
  auto config = ModelConfigFromGguf(**file);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  auto weights = ModelWeights::Load(**file, *config, LayerRange{0, config->n_layer});
  if (!weights.ok()) {
    std::fprintf(stderr, "%s\n", weights.status().ToString().c_str());
    return 1;
  }
  if (o.mode == "stages") return StagesMode(**file, *config, o.batch, o.threads, &pool, o.rounds);
  if (o.mode == "finite") return FiniteMode(**weights, &pool, o.threads, o.rounds);
  const ModelWeights& w = **weights;
  const int bs = KvCache::kDefaultBlockSize;

  int prompt = 32, steps = 128, nseq = 1;
  if (o.mode == "prefill") {
    prompt = 512;
    steps = 0;
  } else if (o.mode == "batch") {
    prompt = 16;
    steps = 32;
    nseq = o.batch;
  } else if (o.mode != "decode") {
    std::fprintf(stderr, "unknown mode %s\n", o.mode.c_str());
    return 2;
  }
  const int blocks_per_seq = (prompt + steps + bs - 1) / bs;
  KvCache kv(*config, LayerRange{0, config->n_layer}, int64_t{blocks_per_seq} * nseq, bs);
  ModelRunner runner(&w, &kv, &pool);
  const uint64_t bytes_per_token = BytesPerDecodedToken(w);

  for (int r = 0; r < o.rounds; ++r) {
    std::vector<SequenceStep> batch(nseq);
    for (int s = 0; s < nseq; ++s) {
      SequenceStep& st = batch[s];
      st.seq_id = s;
      st.start_pos = 0;
      st.num_tokens = prompt;
      for (int i = 0; i < prompt; ++i) st.tokens.push_back(TokenAt(s, i));
      for (int b = 0; b < blocks_per_seq; ++b) st.block_table.push_back(s * blocks_per_seq + b);
      st.logits = LogitsMode::kLast;
    }
    StepOutput out;
    const double t0 = Now();
    absl::Status st = runner.Forward(batch, {}, &out);
    const double t1 = Now();
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    if (o.mode == "prefill") {
      std::printf("{\"mode\":\"prefill\",\"threads\":%d,\"tokens\":%d,\"tok_s\":%.2f}\n",
                  o.threads, prompt, prompt / (t1 - t0));
      std::fflush(stdout);
      continue;
    }
    const int64_t vocab = config->vocab_size;
    const double t2 = Now();
    for (int i = 0; i < steps; ++i) {
      for (int s = 0; s < nseq; ++s) {
        SequenceStep& q = batch[s];
        const int32_t next = Argmax(&out.logits[s * vocab], vocab);
        q.start_pos += q.num_tokens;
        q.num_tokens = 1;
        q.tokens.assign(1, next);
      }
      st = runner.Forward(batch, {}, &out);
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
    }
    const double dt = Now() - t2;
    const double tok_s = static_cast<double>(steps) * nseq / dt;
    if (o.mode == "decode") {
      std::printf(
          "{\"mode\":\"decode\",\"threads\":%d,\"tokens\":%d,\"tok_s\":%.2f,"
          "\"bytes_per_token\":%llu,\"weight_gbps\":%.3f}\n",
          o.threads, steps, tok_s, static_cast<unsigned long long>(bytes_per_token),
          tok_s * static_cast<double>(bytes_per_token) / 1e9);
    } else {
      std::printf("{\"mode\":\"batch\",\"threads\":%d,\"batch\":%d,\"steps\":%d,\"tok_s\":%.2f}\n",
                  o.threads, nseq, steps, tok_s);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) { return tessera::Main(argc, argv); }
