// What each part of a model costs in memory, read from a GGUF header alone.
//
// The planner needs the byte size of every layer, of the token embedding (the
// first stage's extra) and of the LM head (the last stage's extra) before any
// worker loads anything. GgufFile already knows each tensor's type and shape,
// so this reads only the tensor descriptors and never touches tensor data:
// planning a 70B model costs a header parse, not 40 GB of reads.
//
// Besides bytes it carries an estimate of what each part costs in time per
// decoded token (DecodeCostPerByte below), so the planner can balance stages
// by time: a byte of a Q8_0 LM head does not take as long as a byte of a Q4_1
// layer with its attention.
//
// A ModelFootprint is a plain value, safe to share between threads once built.
#ifndef TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_
#define TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf/ggml_type.h"
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

  // Estimated time each part costs per token of a batched decode step, in
  // "layer bytes": the time one stored byte of a Q4_1 layer matrix takes
  // (so a stage's seconds ≈ cost / read bandwidth). Each tensor counts
  // size_bytes × DecodeCostPerByte(type); layer matrices are multiplied by
  // kLayerOverhead for the attention, norms and activation quantisation that
  // run between them. The head counts whole (every decoded token needs its
  // logits); the embedding costs nothing in time (a lookup reads one row), so
  // it has no entry. Empty layer_cost (a hand-built footprint) means "cost =
  // bytes" to the planner.
  std::vector<double> layer_cost;
  double head_cost = 0;
  double other_cost = 0;

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

// Layer matrices cost this much more than their MatMuls alone: attention,
// RoPE, norms, activation quantisation and the pool's fork/join between the
// matrices. Measured on SmolLM2 Q4_1 (docs/perf.md, 2026-11-24): a whole
// layer took 1.0–1.4× its seven MatMuls at 16–32 tokens per step.
inline constexpr double kLayerOverhead = 1.25;

// Time per stored byte of a weight matrix of `type` in a decode step of
// 16–32 tokens, relative to Q4_1 (= 1), for Tessera's own CPU kernels on an
// AVX-512 VNNI machine. Measured with `tessera_cpu_bench --mode matmul`
// (1 thread), rounded; F32 0.7 and F16/BF16 1.15 (converted to float per
// weight) since 2026-11-24. Since the 16-token tile kernels of every block
// format (2026-12-05, docs/perf.md, 16 / 32 tokens): Q8_0 0.55 (0.58 /
// 0.53), Q4_0 0.95 (0.94 / 0.93), Q5_0 0.85 (0.89 / 0.79), Q5_1 0.85 (0.87 /
// 0.86), IQ4_NL 0.95 (0.96 / 0.91), Q4_K 1.45 (1.51 / 1.35), Q5_K 1.2 (1.30
// / 1.14), Q6_K 1.0 (1.06 / 0.92), IQ4_XS 1.45 (1.52 / 1.33), Q2_K 2.35
// (2.42 / 2.29), Q3_K 2.15 (2.30 / 1.99); before them the super-block
// formats were 1.8-4.5 and on their scalar kernels 10-100. Plain 1-D tensors
// (norms, biases) and unknown types count 1. Re-measure when kernels
// change: the table is what makes a stage's estimate honest.
double DecodeCostPerByte(GgmlType type, bool is_matrix);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_
