// Decode speed of a real cluster (tessera-coordinator + N tessera-worker
// processes on loopback) for each stage count and number of concurrent
// streams, with where a step's time goes: the coordinator's PipelineStats
// (GetModelInfo) give the summed round trip and each stage's compute time, so
//   per-hop latency = (round trip - sum of stage compute) / hops
// where a step makes S + 1 hops on S stages (down every link, then the last
// stage straight back to the coordinator), and the stages' received bytes
// give the bytes on the wire per token.
//
// --baseline-dir points at another build's bin directory (holding
// tessera-coordinator and tessera-worker): each configuration is then also
// measured with those binaries, rounds alternating between the two builds so
// that drift of the machine hits both alike. --baseline-hops-per-stage says
// how that build routes results (2: back up through every stage, as builds
// before S + 1 routing did).
//
// Prints one JSON object per (build, stage count, streams) on stdout, for
// bench/pipeline_vs_llamacpp.py, which puts them next to llama.cpp.
//
//   tessera_pipeline_bench --model PATH [--stages 1,2,3] [--streams 1,4]
//                          [--tokens 128] [--rounds 3] [--threads 1]
//                          [--baseline_dir DIR] [--baseline_hops_per_stage 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "testing/cluster.h"

ABSL_FLAG(std::string, model, "", "GGUF model (required).");
ABSL_FLAG(std::vector<std::string>, stages, std::vector<std::string>({"1", "2", "3"}),
          "Stage counts to measure.");
ABSL_FLAG(int32_t, tokens, 128, "Tokens to decode per round (end-of-generation ignored).");
ABSL_FLAG(int32_t, rounds, 3, "Rounds per stage count; the best is reported.");
ABSL_FLAG(int32_t, threads, 1, "Kernel threads per worker.");
ABSL_FLAG(std::vector<std::string>, streams, std::vector<std::string>({"1"}),
          "Concurrent streams to measure (each decodes --tokens tokens).");
ABSL_FLAG(std::string, baseline_dir, "",
          "Directory of another build's tessera-coordinator and tessera-worker to measure in "
          "the same run (empty: none).");
ABSL_FLAG(int32_t, baseline_hops_per_stage, 2,
          "Hops per stage of a step in the baseline build (2: results relayed back through "
          "every stage).");

namespace {

namespace v1 = ::tessera::v1;
using Clock = std::chrono::steady_clock;

constexpr char kPrompt[] =
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined a screw press with movable metal type.";

v1::PipelineStats Stats(v1::Inference::Stub* stub) {
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
  return info.stats();
}

struct Round {
  double decode_tok_s = 0;   // tokens after the first / time after the first, all streams
  double per_token_ms = 0;   // mean time between tokens of one stream
  double ttft_ms = 0;        // request sent to first token, mean over streams
  int64_t tokens = 0;
  bool ok = false;
};

struct Stream {
  Clock::time_point start, first, last;
  int64_t tokens = 0;
  bool ok = false;
};

Stream DecodeOne(v1::Inference::Stub* stub, int32_t tokens) {
  v1::GenerateRequest r;
  r.set_text(kPrompt);
  r.set_max_tokens(tokens);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  Stream out;
  out.start = Clock::now();
  auto reader = stub->Generate(&ctx, r);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) {
    if (resp.token_ids_size() == 0) continue;
    out.last = Clock::now();
    if (out.tokens == 0) out.first = out.last;
    out.tokens += resp.token_ids_size();
  }
  const grpc::Status s = reader->Finish();
  out.ok = s.ok() && out.tokens > 1;
  if (!s.ok()) std::fprintf(stderr, "generate failed: %s\n", s.error_message().c_str());
  return out;
}

Round Decode(v1::Inference::Stub* stub, int32_t tokens, int streams) {
  std::vector<Stream> got(streams);
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] { got[i] = DecodeOne(stub, tokens); });
  }
  for (std::thread& t : threads) t.join();
  Round out;
  out.ok = true;
  Clock::time_point first = got[0].first, last = got[0].last;
  for (const Stream& g : got) {
    out.ok = out.ok && g.ok;
    if (!g.ok) continue;
    out.tokens += g.tokens;
    first = std::min(first, g.first);
    last = std::max(last, g.last);
    out.ttft_ms += std::chrono::duration<double, std::milli>(g.first - g.start).count() / streams;
    out.per_token_ms += std::chrono::duration<double, std::milli>(g.last - g.first).count() /
                        (g.tokens - 1) / streams;
  }
  if (!out.ok) return out;
  out.decode_tok_s = (out.tokens - streams) / std::chrono::duration<double>(last - first).count();
  return out;
}

// One build's cluster of `stages` workers, up and warmed.
struct Build {
  std::string name;
  std::unique_ptr<tessera::testing::Cluster> cluster;
  std::unique_ptr<v1::Inference::Stub> stub;
  Round best;
  v1::PipelineStats best_delta;
};

v1::PipelineStats Delta(const v1::PipelineStats& before, const v1::PipelineStats& after) {
  v1::PipelineStats d = after;
  d.set_steps(after.steps() - before.steps());
  d.set_tokens(after.tokens() - before.tokens());
  d.set_round_trip_micros(after.round_trip_micros() - before.round_trip_micros());
  for (int s = 0; s < after.stages_size(); ++s) {
    const v1::StageTiming& b = s < before.stages_size() ? before.stages(s) : v1::StageTiming();
    d.mutable_stages(s)->set_compute_micros(after.stages(s).compute_micros() - b.compute_micros());
    d.mutable_stages(s)->set_bytes_in(after.stages(s).bytes_in() - b.bytes_in());
  }
  return d;
}

void Print(const Build& b, int stages, int streams, int hops) {
  const v1::PipelineStats& d = b.best_delta;
  const double steps = std::max<double>(1, d.steps());
  double compute = 0, bytes = 0;
  std::string per_stage;
  for (const v1::StageTiming& s : d.stages()) {
    compute += s.compute_micros();
    bytes += s.bytes_in();
    absl::StrAppend(&per_stage, per_stage.empty() ? "" : ",",
                    absl::StrFormat("%.1f", s.compute_micros() / steps));
  }
  const double round_trip = d.round_trip_micros() / steps;
  const double hop = (round_trip - compute / steps) / hops;
  std::printf(
      "{\"build\": \"%s\", \"stages\": %d, \"streams\": %d, \"threads_per_worker\": %d, "
      "\"tokens\": %lld, \"decode_tok_s\": %.2f, \"per_token_ms\": %.3f, \"ttft_ms\": %.2f, "
      "\"steps\": %.0f, \"step_round_trip_us\": %.1f, \"stage_compute_us\": [%s], "
      "\"hops\": %d, \"per_hop_us\": %.1f, \"wire_bytes_per_token\": %.1f, "
      "\"wire_bytes_per_token_per_hop\": %.1f}\n",
      b.name.c_str(), stages, streams, absl::GetFlag(FLAGS_threads),
      static_cast<long long>(b.best.tokens), b.best.decode_tok_s, b.best.per_token_ms,
      b.best.ttft_ms, steps, round_trip, per_stage.c_str(), hops, hop,
      bytes / std::max<double>(1, d.tokens()), bytes / std::max<double>(1, d.tokens()) / stages);
  std::fflush(stdout);
}

int Main() {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) {
    std::fprintf(stderr, "tessera_pipeline_bench: --model is required\n");
    return 2;
  }
  const std::string baseline = absl::GetFlag(FLAGS_baseline_dir);
  for (const std::string& stage_text : absl::GetFlag(FLAGS_stages)) {
    const int stages = std::stoi(stage_text);
    for (const std::string& stream_text : absl::GetFlag(FLAGS_streams)) {
      const int streams = std::stoi(stream_text);
      std::vector<Build> builds(baseline.empty() ? 1 : 2);
      builds[0].name = "current";
      if (!baseline.empty()) builds[1].name = "baseline";
      for (Build& b : builds) {
        tessera::testing::ClusterOptions o;
        o.model = model;
        o.workers = stages;
        o.worker_threads = absl::GetFlag(FLAGS_threads);
        o.coordinator_flags = {"--max-context=1024", absl::StrCat("--max-seqs=", streams)};
        if (b.name == "baseline") {
          o.coordinator_binary = baseline + "/tessera-coordinator";
          o.worker_binary = baseline + "/tessera-worker";
        }
        b.cluster = std::make_unique<tessera::testing::Cluster>(o);
        if (!b.cluster->ready()) {
          std::fprintf(stderr, "%s cluster of %d did not come up:\n%s\n", b.name.c_str(), stages,
                       b.cluster->coordinator().output().c_str());
          return 1;
        }
        b.stub = b.cluster->InferenceStub();
        Decode(b.stub.get(), 16, streams);  // warm-up: first connections, page faults
      }
      for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
        for (Build& b : builds) {
          const v1::PipelineStats before = Stats(b.stub.get());
          const Round r = Decode(b.stub.get(), absl::GetFlag(FLAGS_tokens), streams);
          const v1::PipelineStats after = Stats(b.stub.get());
          if (!r.ok) return 1;
          if (r.decode_tok_s > b.best.decode_tok_s) {
            b.best = r;
            b.best_delta = Delta(before, after);
          }
        }
      }
      for (const Build& b : builds) {
        const int hops = b.name == "baseline"
                             ? absl::GetFlag(FLAGS_baseline_hops_per_stage) * stages
                             : stages + 1;
        Print(b, stages, streams, hops);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Main();
}
