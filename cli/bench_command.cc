#include "cli/bench_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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

// Request `i`'s prompt: `prompt`, or with shared prefixes one of N long
// system prompts (about 300 tokens; which one is a hash of i) and then its
// own question.
std::string PromptOf(const BenchCommandOptions& o, uint64_t i) {
  if (o.shared_prefixes <= 0) return o.prompt;
  // Which prefix is a hash of i, so it does not line up with any order in
  // which a router might hand out requests.
  uint64_t h = i * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  const uint64_t k = h % static_cast<uint64_t>(o.shared_prefixes);
  std::string system = absl::StrFormat("System prompt %d. You are assistant number %d.", k, k);
  static constexpr const char* kRules[] = {
      "Answer briefly and precisely.", "Cite the rule you follow.",
      "Prefer plain words over jargon.", "Never invent facts you do not know.",
      "Keep lists short.", "Say when a question is ambiguous."};
  for (int line = 0; line < 24; ++line) {
    absl::StrAppendFormat(&system, " Rule %d for assistant %d: %s", line, k,
                          kRules[(line + k) % 6]);
  }
  return absl::StrFormat("%s\nQuestion %d: %s", system, i, o.prompt);
}

// Prompt tokens served from the prefix cache and computed, so far.
struct CacheCounters {
  int64_t hit_tokens = 0;
  int64_t computed_tokens = 0;
};
CacheCounters CountersOf(v1::Inference::Stub* stub, const ClientConnection& connection) {
  grpc::ClientContext ctx;
  Authorize(connection, &ctx);
  v1::ModelInfo info;
  CacheCounters c;
  if (!stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok()) return c;
  c.hit_tokens = info.serving().prefix_hit_blocks() * info.kv_block_size();
  c.computed_tokens = info.serving().prefill_tokens();
  return c;
}

absl::Status OneRequest(v1::Inference::Stub* stub, const BenchCommandOptions& o, uint64_t seed,
                        Sample* out) {
  v1::GenerateRequest r;
  r.set_text(PromptOf(o, seed));
  r.set_max_tokens(o.max_tokens);
  r.set_ignore_eos(true);
  SamplingParams sampling = o.sampling;
  sampling.seed = seed;
  SamplingToProto(sampling, r.mutable_sampling());
  grpc::ClientContext ctx;
  Authorize(o.connection, &ctx);
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
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(o.connection);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Inference::NewStub(*channel);
  std::printf("%11s %9s %14s %11s %11s %11s %11s %7s%s\n", "concurrency", "requests",
              "output tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "errors",
              o.shared_prefixes > 0 ? "  prefix hit" : "");
  absl::Status first_error;
  uint64_t seed = 1;
  for (int level : o.concurrency) {
    if (level < 1) return absl::InvalidArgumentError("--concurrency levels must be >= 1");
    const int total = o.requests > 0 ? o.requests : std::max(8, 2 * level);
    std::atomic<int> next{0};
    absl::Mutex mu;
    std::vector<Sample> samples;
    int errors = 0;
    const CacheCounters before = CountersOf(stub.get(), o.connection);
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
    std::string hit;
    if (o.shared_prefixes > 0) {
      const CacheCounters after = CountersOf(stub.get(), o.connection);
      const int64_t cached = after.hit_tokens - before.hit_tokens;
      const int64_t computed = after.computed_tokens - before.computed_tokens;
      hit = absl::StrFormat("  %9.1f%%", cached + computed > 0
                                              ? 100.0 * cached / (cached + computed)
                                              : 0.0);
    }
    std::printf("%11d %9d %14.1f %9.1fms %9.1fms %9.1fms %9.1fms %7d%s\n", level, total,
                tokens / seconds, Percentile(ttft, 0.5), Percentile(ttft, 0.99),
                Percentile(tpot, 0.5), Percentile(tpot, 0.99), errors, hit.c_str());
    std::fflush(stdout);
  }
  return first_error;
}

}  // namespace tessera
