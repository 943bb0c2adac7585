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
// (docs/perf.md, 2026-11-24), rounded: Q8_0 0.75 (int8 dot products like
// Q4_1, 1.7× the bytes per weight, no nibble unpacking), F32 0.7, F16/BF16
// 1.15 (converted to float per weight). Since their SIMD kernels
// (2026-12-05, same bench, 16 / 32 tokens): Q4_0 1.0 (1.04 / 0.92-1.18),
// Q5_0 0.85 (0.88 / 0.77-0.99), Q5_1 0.75 (0.80 / 0.67-0.84), Q4_K 2.2
// (2.45 / 2.03), Q5_K 1.95 (2.11 / 1.78), Q6_K 1.8 (1.95 / 1.61; the
// K-quants were 10, 25 and 100 on their scalar kernels), IQ4_NL 1.15 (1.14 /
// 1.17), IQ4_XS 2.2 (2.49 / 1.88), Q2_K 4.5 (4.81 / 4.18), Q3_K 4.3 (4.70 /
// 3.88). Plain 1-D tensors
// (norms, biases) and unknown types count 1. Re-measure when kernels
// change: the table is what makes a stage's estimate honest.
double DecodeCostPerByte(GgmlType type, bool is_matrix);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_MODEL_FOOTPRINT_H_
