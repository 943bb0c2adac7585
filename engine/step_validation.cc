#include "engine/step_validation.h"

#include "absl/strings/str_format.h"

namespace tessera {

absl::Status ValidateBlockTable(absl::Span<const int32_t> block_table, int64_t end_position,
                                int64_t kv_blocks, int64_t block_size) {
  const int64_t needed = (end_position + block_size - 1) / block_size;
  if (static_cast<int64_t>(block_table.size()) < needed) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "block table has %d blocks but position %d needs %d (block size %d)",
        block_table.size(), end_position - 1, needed, block_size));
  }
  for (size_t i = 0; i < block_table.size(); ++i) {
    if (block_table[i] < 0 || block_table[i] >= kv_blocks) {
      return absl::InvalidArgumentError(
          absl::StrFormat("block table entry %d is block %d, outside the pool of %d blocks", i,
                          block_table[i], kv_blocks));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateStep(const StepShapeLimits& limits, absl::Span<const SequenceStep> seqs,
                          absl::Span<const float> hidden_in) {
  int64_t total = 0;
  for (const SequenceStep& s : seqs) {
    if (s.num_tokens <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: num_tokens is %d, must be positive", s.seq_id, s.num_tokens));
    }
    const int64_t end = static_cast<int64_t>(s.start_pos) + s.num_tokens;
    if (s.start_pos < 0 || end > limits.context_length) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: positions %d..%d are outside the model context of %d", s.seq_id,
          s.start_pos, end - 1, limits.context_length));
    }
    if (limits.first_stage) {
      if (static_cast<int64_t>(s.tokens.size()) != s.num_tokens) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "sequence %d: %d token ids for num_tokens %d", s.seq_id, s.tokens.size(),
            s.num_tokens));
      }
      for (int32_t t : s.tokens) {
        if (t < 0 || t >= limits.vocab_size) {
          return absl::InvalidArgumentError(
              absl::StrFormat("sequence %d: token id %d outside the vocabulary of %d", s.seq_id,
                              t, limits.vocab_size));
        }
      }
    }
    absl::Status bt = ValidateBlockTable(s.block_table, end, limits.kv_blocks, limits.block_size);
    if (!bt.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("sequence %d: %s", s.seq_id, bt.message()));
    }
    total += s.num_tokens;
  }
  if (!limits.first_stage && static_cast<int64_t>(hidden_in.size()) != total * limits.n_embd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hidden states hold %d floats; %d tokens x %d dims expected",
                        hidden_in.size(), total, limits.n_embd));
  }
  return absl::OkStatus();
}

}  // namespace tessera
