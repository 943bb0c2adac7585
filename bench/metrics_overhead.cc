// What the coordinator's event metrics cost per call, and what rendering
// /metrics costs, timed directly (bench/metrics_bench.sh measures the
// whole-system effect, which this machine's noise of a few percent hides):
// each hook and a render of a registry with a realistic number of series,
// as nanoseconds per call, best of 5 runs of 200k calls (renders: 200).
// docs/perf.md turns them into a share of a decode token's time.
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/metrics/exposition.h"
#include "coordinator/serving_metrics.h"

namespace tessera {
namespace {

double BestNanosPerCall(int calls, const std::function<void(int)>& body) {
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) body(i);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, ns / calls);
  }
  return best;
}

int Main() {
  ServingMetrics m("SmolLM2-135M-Instruct.Q4_1");
  const StreamOutcome end{absl::OkStatus(), "length", 40, 64};
  std::printf("%-44s %12s\n", "hook", "ns/call");
  std::printf("%-44s %12.1f\n", "NextToken (every token)",
              BestNanosPerCall(200000, [&](int) { m.NextToken(absl::Milliseconds(8)); }));
  std::printf("%-44s %12.1f\n", "StageStep (every step, each stage)",
              BestNanosPerCall(200000, [&](int i) { m.StageStep(0, i & 1, 6000, 4000); }));
  std::printf("%-44s %12.1f\n", "StepAnswered (every step)",
              BestNanosPerCall(200000, [&](int) { m.StepAnswered(0, absl::Milliseconds(15), 400); }));
  std::printf("%-44s %12.1f\n", "FirstToken + Scheduled + PrefixLookup (each request)",
              BestNanosPerCall(200000, [&](int) {
                m.FirstToken(absl::Milliseconds(50));
                m.Scheduled(absl::Microseconds(40));
                m.PrefixLookup(32, 16);
              }));
  std::printf("%-44s %12.1f\n", "Finished (each request)",
              BestNanosPerCall(200000, [&](int) { m.Finished(end, absl::Milliseconds(900)); }));
  std::string text;
  const double render = BestNanosPerCall(200, [&](int) { text = RenderMetrics({m.registry()}); });
  std::printf("%-44s %12.1f  (%zu bytes)\n", "RenderMetrics (one scrape of these series)", render,
              text.size());
  return 0;
}

}  // namespace
}  // namespace tessera

int main() { return tessera::Main(); }
