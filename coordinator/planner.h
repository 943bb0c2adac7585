// The pipeline memory planner: which worker runs which layers, and how many
// KV blocks every stage holds.
//
// This is the arithmetic operators otherwise do by hand (weights, KV per
// token, activations, what is left for batch × context), made executable over
// the workers actually present. The split is one contiguous, non-empty layer
// range per worker, in the order given (that order is the pipeline's order).
// Among the splits where every stage fits its memory with the KV for at least
// one full-context sequence, it picks the one whose slowest stage reads the
// fewest estimated seconds per decoded token; among those, the one that
// leaves the most KV blocks. Time is estimated per tensor from its bytes and
// storage type (ModelFootprint's decode costs, DecodeCostPerByte): a byte of
// a Q8_0 LM head takes less time than a byte of a Q4_1 layer. Memory decides
// which splits are allowed; time only picks among them. The token embedding
// sits on stage 0 and the LM head on the last stage, both counted in memory:
// the head is often the largest single tensor, and forgetting it is how a
// last stage runs out of memory. In time the head counts (every decoded token
// needs its logits) but the embedding does not (a lookup reads one row).
//
// Every stage gets the same number of KV blocks (one block table is valid on
// all of them), so the tightest stage decides the pool size.
//
// docs/planning.md explains the formulas and how to read FormatPlan's table.
// All functions are pure and thread-safe.
#ifndef TESSERA_COORDINATOR_PLANNER_H_
#define TESSERA_COORDINATOR_PLANNER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/byte_size.h"
#include "coordinator/model_footprint.h"

namespace tessera {

struct WorkerCapacity {
  std::string name;                  // address, shown in tables and errors
  uint64_t memory_bytes = 0;         // memory this worker may use for weights + KV + activations
  double bandwidth_bytes_per_s = 0;  // measured read bandwidth; 0 = unknown
  // Tensor-parallel degree: the worker splits its layers over this many
  // ranks (0 reads as 1). Its weights and KV are the same bytes split N ways,
  // so they count as before, plus the norms every rank replicates; each rank
  // has its own activation scratch, so activations count N times.
  int tensor_parallel = 1;
};

struct PlanOptions {
  int64_t max_context = 4096;      // tokens per sequence (prompt + generation)
  int64_t max_seqs = 1;            // concurrent sequences the KV pool should hold
  int64_t max_batch_tokens = 512;  // tokens in the largest step; sizes activation scratch
  int block_size = 16;             // tokens per KV block
  int kv_dtype_bytes = 4;          // bytes per K/V element: 4 = f32, 2 = f16
};

struct StagePlan {
  int worker = 0;                      // index into the workers span
  int layer_begin = 0, layer_end = 0;  // [begin, end)
  bool has_embedding = false, has_head = false;
  uint64_t weight_bytes = 0;        // layers + embedding/head/other as applicable
  uint64_t kv_bytes_per_token = 0;  // this stage's layers only
  uint64_t activation_bytes = 0;    // ActivationBytes() for this stage
  uint64_t kv_bytes = 0;            // num_blocks × block_size × kv_bytes_per_token
  uint64_t free_bytes = 0;          // memory left after all the above
  // Estimated time of one decoded token, in layer bytes (the time one byte of
  // a Q4_1 layer matrix takes; ModelFootprint::layer_cost): what the split
  // balances. Counts the layers and the LM head, not the embedding lookup.
  double decode_cost = 0;
  double seconds_per_token = 0;  // decode_cost / bandwidth; 0 if bandwidth unknown
};

struct PipelinePlan {
  std::vector<StagePlan> stages;
  int64_t num_blocks = 0;  // the same on every stage
  int block_size = 16;
  int64_t max_blocks_fit = 0;  // blocks the tightest stage could hold before capping

  // The largest context × concurrency the pool holds: num_blocks × block_size tokens.
  int64_t kv_capacity_tokens() const { return num_blocks * block_size; }
};

// K and V bytes one token costs in each layer: 2 × n_kv_head × head_dim × kv_dtype_bytes.
uint64_t KvBytesPerTokenPerLayer(const ModelConfig& config, int kv_dtype_bytes);

// Scratch one stage needs for a max_batch_tokens step, in float32:
//   max_batch_tokens × 4 × (5·n_embd + 2·n_head·head_dim + 2·n_kv_head·head_dim
//                           + 2·n_ff + max(n_embd, n_ff))
//   + 4 × n_head × max_context                       (attention probabilities)
//   + [last stage] 4 × max_batch_tokens × vocab_size (logits)
// The per-token term covers the residual, the normalised input, Q, K, V, the
// attention output, gate, up, the FFN output, the hidden states received and
// sent, and a quantised copy of the widest activation (counted at 4 bytes).
uint64_t ActivationBytes(const ModelConfig& config, const PlanOptions& options, bool last_stage);

// Empty when a worker with `tp` ranks can hold this model's layers; otherwise
// why not, naming the numbers. The rule is the engine's (CheckTensorParallel
// in engine/tensor_parallel.h, restated here so the planner need not link
// the engine): tp >= 1 divides n_kv_head (attention is split by KV-head
// groups) and n_ff, and ceil(vocab / tp) rows per rank leave the last rank
// some vocabulary.
std::string TensorParallelRefusal(const ModelConfig& config, int tp);

// Splits `model` over `workers` as described at the top of this file.
// num_blocks = min(blocks the tightest stage can hold,
//                  max_seqs × ceil(max_context / block_size)),
// which is always at least ceil(max_context / block_size).
// INVALID_ARGUMENT for bad options, zero workers, more workers than layers, a
// footprint whose layer count disagrees with its config, a negative or
// non-finite bandwidth, or a worker whose tensor-parallel degree the model
// cannot be split by (TensorParallelRefusal). RESOURCE_EXHAUSTED when no split fits; the message
// gives the model's weight bytes, the KV bytes for max_context × max_seqs, the
// workers' total memory, the tightest stage of the best split, and the first
// of F16, Q8_0, Q6_K, Q5_K, Q4_K, Q4_1, Q4_0 that would fit (or what even
// Q4_0 would need).
// Bandwidth: when every worker reports one, a stage's cost is decode_cost /
// bandwidth; when any is unknown (0), all workers count as equally fast and
// the cost is decode_cost.
absl::StatusOr<PipelinePlan> PlanPipeline(const ModelFootprint& model,
                                          absl::Span<const WorkerCapacity> workers,
                                          const PlanOptions& options);

// A per-stage table (worker, layers, weights, KV/token, activations, KV pool,
// free, the stage's share of the estimated decode time, s/token) and a summary: blocks, KV capacity in tokens, and how many
// sequences of max_context tokens fit.
std::string FormatPlan(const ModelFootprint& model, absl::Span<const WorkerCapacity> workers,
                       const PlanOptions& options, const PipelinePlan& plan);

}  // namespace tessera

#endif  // TESSERA_COORDINATOR_PLANNER_H_
