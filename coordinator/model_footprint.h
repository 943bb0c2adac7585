// What each part of a model costs in memory, read from a GGUF header alone.
//
// The planner needs the byte size of every layer, of the token embedding (the
// first stage's extra) and of the LM head (the last stage's extra) before any
// worker loads anything. GgufFile already knows each tensor's type and shape,
// so this reads only the tensor descriptors and never touches tensor data:
// planning a 70B model costs a header parse, not 40 GB of reads.
//
// A ModelFootprint is a plain value, safe to share between threads once built.
#ifndef TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_
#define TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"

namespace tessera {

struct ModelFootprint {
  ModelConfig config;
  // Bytes of all blk.<i>.* tensors, indexed by layer i (size config.n_layer).
  std::vector<uint64_t> layer_bytes;
  // token_embd.weight: stored on the first stage.
  uint64_t embedding_bytes = 0;
  // output_norm.weight plus output.weight, or plus token_embd.weight again
  // when the embedding is tied: stored on the last stage.
  uint64_t head_bytes = 0;
  // The part of head_bytes that is the tied token embedding (0 when untied).
  // A single stage holding both ends stores that tensor only once.
  uint64_t tied_embedding_bytes = 0;
  // Anything else (e.g. rope_freqs.weight): every stage holds a copy.
  uint64_t other_bytes = 0;

  // Elements of all tensors (a tied embedding counted once), and the same per
  // part, so that the planner can price the model in another quantization.
  uint64_t parameter_count = 0;
  std::vector<uint64_t> layer_parameters;
  uint64_t embedding_parameters = 0;
  uint64_t head_parameters = 0;  // includes the tied embedding's elements
  uint64_t other_parameters = 0;

  // The storage type holding most elements of the layers' 2-D matrices, e.g.
  // "Q4_1" (a Q4_K_M file reports "Q4_K" though some matrices are Q6_K).
  std::string weight_type;

  // Reads the header of `file`: ModelConfigFromGguf's errors, or
  // INVALID_ARGUMENT naming the tensor when a blk.* name has no layer index or
  // one outside [0, n_layer), or when a layer has no tensors at all.
  static absl::StatusOr<ModelFootprint> FromGguf(const GgufFile& file);

  // Bytes of all tensors in the file: what one process holding the whole
  // model stores (the tied embedding once).
  uint64_t total_bytes() const;
};

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_
