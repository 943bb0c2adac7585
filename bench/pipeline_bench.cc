// Decode speed of a real cluster (tessera-coordinator + N tessera-worker
// processes on loopback) for each stage count, with where a step's time goes:
// the coordinator's PipelineStats (GetModelInfo) give the summed round trip
// and each stage's compute time, so
//   per-hop latency = (round trip - sum of stage compute) / (2 x stages)
// (a step crosses every link down and its result comes back up), and the
// stages' received bytes give the bytes on the wire per token.
//
// Prints one JSON object per stage count on stdout, for
// bench/pipeline_vs_llamacpp.py, which puts them next to llama.cpp.
//
//   tessera_pipeline_bench --model PATH [--stages 1,2,3] [--tokens 128]
//                          [--rounds 3] [--threads 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
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
  double decode_tok_s = 0;   // tokens after the first / time after the first
  double ttft_ms = 0;        // request sent to first token
  int64_t tokens = 0;
  bool ok = false;
};

Round Decode(v1::Inference::Stub* stub, int32_t tokens) {
  v1::GenerateRequest r;
  r.set_text(kPrompt);
  r.set_max_tokens(tokens);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  const Clock::time_point start = Clock::now();
  Clock::time_point first, last;
  auto reader = stub->Generate(&ctx, r);
  v1::GenerateResponse resp;
  Round out;
  while (reader->Read(&resp)) {
    if (resp.token_ids_size() == 0) continue;
    last = Clock::now();
    if (out.tokens == 0) first = last;
    out.tokens += resp.token_ids_size();
  }
  const grpc::Status s = reader->Finish();
  out.ok = s.ok() && out.tokens > 1;
  if (!s.ok()) std::fprintf(stderr, "generate failed: %s\n", s.error_message().c_str());
  if (!out.ok) return out;
  out.ttft_ms = std::chrono::duration<double, std::milli>(first - start).count();
  out.decode_tok_s =
      (out.tokens - 1) / std::chrono::duration<double>(last - first).count();
  return out;
}

int Main() {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) {
    std::fprintf(stderr, "tessera_pipeline_bench: --model is required\n");
    return 2;
  }
  for (const std::string& stage_text : absl::GetFlag(FLAGS_stages)) {
    const int stages = std::stoi(stage_text);
    tessera::testing::ClusterOptions o;
    o.model = model;
    o.workers = stages;
    o.worker_threads = absl::GetFlag(FLAGS_threads);
    o.coordinator_flags = {"--max-context=1024", "--max-seqs=2"};
    tessera::testing::Cluster cluster(o);
    if (!cluster.ready()) {
      std::fprintf(stderr, "cluster of %d did not come up:\n%s\n", stages,
                   cluster.coordinator().output().c_str());
      return 1;
    }
    auto stub = cluster.InferenceStub();
    Decode(stub.get(), 16);  // warm-up: first connections, page faults
    Round best;
    v1::PipelineStats best_delta;
    for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
      const v1::PipelineStats before = Stats(stub.get());
      const Round r = Decode(stub.get(), absl::GetFlag(FLAGS_tokens));
      const v1::PipelineStats after = Stats(stub.get());
      if (!r.ok) return 1;
      if (r.decode_tok_s > best.decode_tok_s) {
        best = r;
        best_delta = after;
        best_delta.set_steps(after.steps() - before.steps());
        best_delta.set_tokens(after.tokens() - before.tokens());
        best_delta.set_round_trip_micros(after.round_trip_micros() - before.round_trip_micros());
        for (int s = 0; s < after.stages_size(); ++s) {
          const v1::StageTiming& b =
              s < before.stages_size() ? before.stages(s) : v1::StageTiming();
          best_delta.mutable_stages(s)->set_compute_micros(after.stages(s).compute_micros() -
                                                           b.compute_micros());
          best_delta.mutable_stages(s)->set_bytes_in(after.stages(s).bytes_in() - b.bytes_in());
        }
      }
    }
    const double steps = std::max<double>(1, best_delta.steps());
    double compute = 0, bytes = 0;
    std::string per_stage;
    for (const v1::StageTiming& s : best_delta.stages()) {
      compute += s.compute_micros();
      bytes += s.bytes_in();
      absl::StrAppend(&per_stage, per_stage.empty() ? "" : ",",
                      absl::StrFormat("%.1f", s.compute_micros() / steps));
    }
    const double round_trip = best_delta.round_trip_micros() / steps;
    const double hop = (round_trip - compute / steps) / (2.0 * stages);
    std::printf(
        "{\"stages\": %d, \"threads_per_worker\": %d, \"tokens\": %lld, \"decode_tok_s\": %.2f, "
        "\"ttft_ms\": %.2f, \"steps\": %.0f, \"step_round_trip_us\": %.1f, "
        "\"stage_compute_us\": [%s], \"per_hop_us\": %.1f, \"wire_bytes_per_token\": %.1f, "
        "\"wire_bytes_per_token_per_hop\": %.1f}\n",
        stages, absl::GetFlag(FLAGS_threads), static_cast<long long>(best.tokens),
        best.decode_tok_s, best.ttft_ms, steps, round_trip, per_stage.c_str(), hop,
        bytes / std::max<double>(1, best_delta.tokens()),
        bytes / std::max<double>(1, best_delta.tokens()) / stages);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Main();
}
