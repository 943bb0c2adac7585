// What the scheduler asks a pipeline to compute in one step, and what comes
// back: plain C++ values, no protocol types. The gRPC pipeline client
// (pipeline_client.h) converts them to and from tessera.v1 messages at its
// edge; unit tests drive the scheduler with a fake sink instead.
//
// Thread-safety: plain data.
#ifndef TESSERA_COORDINATOR_STEP_PLAN_H_
#define TESSERA_COORDINATOR_STEP_PLAN_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/sampling_params.h"

namespace tessera {

// One sequence's share of a step: its next tokens at positions
// [start_pos, start_pos + tokens.size()), and, when `sample` is set (the
// chunk reaches the end of what is known), what the last stage needs to
// pick the following token.
struct PlannedSequence {
  int64_t seq_id = 0;
  std::string request_id;
  int32_t start_pos = 0;
  std::vector<int32_t> tokens;
  // Covers positions [0, start_pos + tokens.size()).
  std::vector<int32_t> block_table;
  // A sequence new to the stages whose positions [0, start_pos) are in its
  // first blocks already (the prefix cache).
  bool prefix_cached = false;
  bool sample = false;
  SamplingParams sampling;
  uint64_t rng_counter = 0;             // index of the token being generated
  std::vector<int32_t> recent_tokens;   // what the repetition penalty looks at
  bool want_logprob = false;
  int32_t top_logprobs = 0;
};

struct StepPlan {
  std::vector<PlannedSequence> seqs;
};

// The last stage's answer for one sampled sequence.
struct SampleOutcome {
  int64_t seq_id = 0;
  // Not OK when this sequence alone failed (non-finite values); the rest of
  // the fields mean nothing then.
  absl::Status status;
  int32_t token_id = 0;
  float logprob = 0.0f;
  // (id, logprob) of the most likely tokens, most likely first.
  std::vector<std::pair<int32_t, float>> top;
};

struct StepOutcome {
  std::vector<SampleOutcome> samples;
};

// Step timing of a pipeline, for GetModelInfo.
struct PipelineTiming {
  struct Stage {
    int32_t stage_index = 0;
    int64_t compute_micros = 0;
    uint64_t bytes_in = 0;
  };
  uint64_t steps = 0;
  uint64_t tokens = 0;
  int64_t round_trip_micros = 0;
  std::vector<Stage> stages;
  // Steps that computed on one stage while another step computed on
  // another (PipelineStats.overlapped_steps).
  uint64_t overlapped_steps = 0;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STEP_PLAN_H_
