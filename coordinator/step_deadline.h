// How long a pipeline step may go unanswered before its replica is presumed
// stuck, from the replica's own measured step times.
//
// A step of n tokens gets max(floor, factor × n × slowest), where `slowest`
// is the longest time per token among the last 256 answered steps. A
// decode step's fixed overhead counts against its single token, so the
// per-token figure is pessimistic and big prefill steps get generous
// deadlines: a replica that is merely saturated slows gradually, and its
// deadlines grow with it. Until `warmup_steps` steps have been answered (a
// first step pages weights in, a cold cache is slow) a step gets
// max(floor, `cold`). factor = 0 makes every deadline the floor.
//
// Thread-safety: none; the scheduler calls it under its lock.
#ifndef TESSERA_COORDINATOR_STEP_DEADLINE_H_
#define TESSERA_COORDINATOR_STEP_DEADLINE_H_

#include <algorithm>
#include <array>
#include <cstdint>

#include "absl/time/time.h"

namespace tessera {

class StepDeadlines {
 public:
  static constexpr int kWindow = 256;
  static constexpr int kWarmupSteps = 16;

  StepDeadlines(absl::Duration floor, double factor,
                absl::Duration cold = absl::Seconds(60))
      : floor_(floor), factor_(factor), cold_(cold) {}

  // The deadline of a step carrying `tokens` tokens, from when it is sent.
  absl::Duration For(int64_t tokens) const {
    if (factor_ <= 0) return floor_;
    if (observed_ < kWarmupSteps) return std::max(floor_, cold_);
    double slowest = 0;
    for (int i = 0; i < std::min<int64_t>(observed_, kWindow); ++i) {
      slowest = std::max(slowest, per_token_s_[i]);
    }
    return std::max(floor_, absl::Seconds(factor_ * slowest * std::max<int64_t>(tokens, 1)));
  }

  // An answered step: how long it took and how many tokens it carried.
  void Observe(absl::Duration round_trip, int64_t tokens) {
    per_token_s_[observed_ % kWindow] =
        absl::ToDoubleSeconds(round_trip) / static_cast<double>(std::max<int64_t>(tokens, 1));
    ++observed_;
  }

 private:
  const absl::Duration floor_;
  const double factor_;
  const absl::Duration cold_;
  std::array<double, kWindow> per_token_s_{};
  int64_t observed_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STEP_DEADLINE_H_
