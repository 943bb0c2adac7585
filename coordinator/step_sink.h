// Where the scheduler sends its steps: "compute this plan, tell me the
// outcome". The gRPC pipeline client implements it; tests use a fake.
//
// Contract: `done` runs exactly once per Send, with the outcome, with the
// step's error, or with UNAVAILABLE when the pipeline breaks; it may run on
// any thread, including the caller's (a send that fails at once), and with
// no lock of the sink held. Release is fire-and-forget: the stages forget
// the sequences. Deadlines are the scheduler's business.
//
// Thread-safety: implementations accept calls from any thread.
#ifndef TESSERA_COORDINATOR_STEP_SINK_H_
#define TESSERA_COORDINATOR_STEP_SINK_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/step_plan.h"

namespace tessera {

class StepSink {
 public:
  using Done = std::function<void(absl::StatusOr<StepOutcome>)>;

  virtual ~StepSink() = default;
  virtual void Send(StepPlan plan, Done done) = 0;
  virtual void Release(const std::vector<int64_t>& seq_ids) = 0;
  virtual PipelineTiming timing() const = 0;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STEP_SINK_H_
