#include "cli/bench_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/convert.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using Clock = std::chrono::steady_clock;

struct Sample {
  double ttft_ms = 0;
  double tpot_ms = 0;  // mean gap between output tokens after the first
  int64_t tokens = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

absl::Status OneRequest(v1::Inference::Stub* stub, const BenchCommandOptions& o, uint64_t seed,
                        Sample* out) {
  v1::GenerateRequest r;
  r.set_text(o.prompt);
  r.set_max_tokens(o.max_tokens);
  r.set_ignore_eos(true);
  SamplingParams sampling = o.sampling;
  sampling.seed = seed;
  SamplingToProto(sampling, r.mutable_sampling());
  grpc::ClientContext ctx;
  const Clock::time_point start = Clock::now();
  Clock::time_point first, last;
  auto reader = stub->Generate(&ctx, r);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) {
    if (resp.token_ids_size() == 0) continue;
    last = Clock::now();
    if (out->tokens == 0) first = last;
    out->tokens += resp.token_ids_size();
  }
  const grpc::Status st = reader->Finish();
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  }
  out->ttft_ms = std::chrono::duration<double, std::milli>(first - start).count();
  if (out->tokens > 1) {
    out->tpot_ms =
        std::chrono::duration<double, std::milli>(last - first).count() / (out->tokens - 1);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BenchCommand(const BenchCommandOptions& o) {
  auto channel = grpc::CreateChannel(o.coordinator, grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  std::printf("%11s %9s %14s %11s %11s %11s %11s %7s\n", "concurrency", "requests",
              "output tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "errors");
  absl::Status first_error;
  uint64_t seed = 1;
  for (int level : o.concurrency) {
    if (level < 1) return absl::InvalidArgumentError("--concurrency levels must be >= 1");
    const int total = o.requests > 0 ? o.requests : std::max(8, 2 * level);
    std::atomic<int> next{0};
    absl::Mutex mu;
    std::vector<Sample> samples;
    int errors = 0;
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < level; ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < total; i = next++) {
          Sample s;
          const absl::Status st = OneRequest(stub.get(), o, seed + i, &s);
          absl::MutexLock lock(&mu);
          if (st.ok()) {
            samples.push_back(s);
          } else {
            ++errors;
            if (first_error.ok()) first_error = st;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    seed += total;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    int64_t tokens = 0;
    std::vector<double> ttft, tpot;
    for (const Sample& s : samples) {
      tokens += s.tokens;
      ttft.push_back(s.ttft_ms);
      tpot.push_back(s.tpot_ms);
    }
    std::printf("%11d %9d %14.1f %9.1fms %9.1fms %9.1fms %9.1fms %7d\n", level, total,
                tokens / seconds, Percentile(ttft, 0.5), Percentile(ttft, 0.99),
                Percentile(tpot, 0.5), Percentile(tpot, 0.99), errors);
    std::fflush(stdout);
  }
  return first_error;
}

}  // namespace tessera
