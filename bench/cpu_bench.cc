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
