// `tessera bench`: a load generator against a running cluster. For each
// concurrency level it keeps that many Generate streams busy until a number
// of requests have finished, and reports aggregate output tok/s, time to
// first token and time per output token (p50 and p99) — the numbers an
// operator sizes a deployment by. With shared_prefixes = N, request i's
// prompt is one of N long system prompts (chosen by a hash of i) followed
// by its own question, as chat traffic with a few system prompts
// looks, and each row adds the prefix-cache hit rate over that level: the
// prompt tokens served from cached KV blocks instead of computed (from the
// coordinator's GetModelInfo counters).
#ifndef TESSERA_CLI_BENCH_COMMAND_H_
#define TESSERA_CLI_BENCH_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/client_connection.h"
#include "common/sampling_params.h"

namespace tessera {

struct BenchCommandOptions {
  ClientConnection connection;
  std::vector<int> concurrency = {1, 4, 16};
  // Requests per level; 0 = 2 x the level, at least 8.
  int requests = 0;
  std::string prompt;
  int32_t max_tokens = 64;            // generated per request (end-of-generation ignored)
  int shared_prefixes = 0;            // 0: every request sends `prompt`
  SamplingParams sampling;            // seeds are varied per request
};

// Prints one table row per level to stdout; the first request error, if any
// request failed.
absl::Status BenchCommand(const BenchCommandOptions& options);

}  // namespace tessera

#endif  // TESSERA_CLI_BENCH_COMMAND_H_
