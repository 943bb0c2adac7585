// The one check of a step against a runner's shapes, shared by every
// StepRunner (CPU, tensor-parallel, CUDA) so that a bad step is refused the
// same way, with the same message, whichever backend would have run it.
//
// Thread-safety: pure functions.
#ifndef TESSERA_ENGINE_STEP_VALIDATION_H_
#define TESSERA_ENGINE_STEP_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/step_runner.h"

namespace tessera {

// What a step is checked against.
struct StepShapeLimits {
  int64_t context_length = 0;  // positions per sequence
  int64_t vocab_size = 0;
  int64_t n_embd = 0;
  bool first_stage = true;  // takes token ids; otherwise hidden states
  int64_t kv_blocks = 0;
  int64_t block_size = 0;
};

// INVALID_ARGUMENT naming the sequence and the field, before any memory is
// touched: a sequence with no tokens, positions past the context, token ids
// missing or outside the vocabulary (first stage), a block table too short
// for its positions or naming blocks outside the pool, or hidden states of
// the wrong size (later stages: total tokens × n_embd floats).
absl::Status ValidateStep(const StepShapeLimits& limits, absl::Span<const SequenceStep> seqs,
                          absl::Span<const float> hidden_in);

// The block-table part of it, for one sequence: its table must cover
// positions [0, end_position) with blocks inside the pool.
absl::Status ValidateBlockTable(absl::Span<const int32_t> block_table, int64_t end_position,
                                int64_t kv_blocks, int64_t block_size);

}  // namespace tessera

#endif  // TESSERA_ENGINE_STEP_VALIDATION_H_
