// The weights one process holds: a contiguous range of transformer layers, plus
// the token embedding when the range starts at layer 0 and the final norm and
// LM head when it ends at the last layer.
//
// Everything points into the GGUF mapping (zero-copy); only tensors of the
// range are ever dereferenced, so the OS pages in just this range's bytes.
// Small norm vectors stored as F16/BF16 are converted once into owned buffers.
//
// LoadShard loads one rank's share of a tensor-parallel group (see
// engine/tensor_parallel.h): row blocks stay zero-copy views; the column
// blocks of the attention output and down projections are copied into owned
// contiguous buffers, so a rank holds about 1/N of every layer matrix.
//
// Thread-safety: immutable after Load; share freely.
#ifndef TESSERA_ENGINE_MODEL_WEIGHTS_H_
#define TESSERA_ENGINE_MODEL_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/model_config.h"
#include "engine/tensor_parallel.h"
#include "kernels/kernels.h"

namespace tessera {

// Fused tensors (glm4's attn_qkv and [gate; up] ffn_up) are presented as
// separate zero-copy row views, so the runner sees one layout for every
// architecture. The optional vectors are nullptr when the model lacks them
// (ModelConfig says which it has); biases cover this shard's rows only.
struct LayerWeights {
  kernels::WeightMatrix wq, wk, wv, wo;
  kernels::WeightMatrix w_gate, w_up, w_down;
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  const float* bq = nullptr;              // qkv_bias
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* attn_post_norm = nullptr;  // post_norms
  const float* ffn_post_norm = nullptr;
};

class ModelWeights {
 public:
  // Validates every tensor of `range` (presence, dtype, shape) and returns
  // views into `file`, which must outlive the result. Errors name the file
  // and the tensor: NOT_FOUND (missing), INVALID_ARGUMENT (shape),
  // UNIMPLEMENTED (a storage type the kernels do not support).
  static absl::StatusOr<std::unique_ptr<ModelWeights>> Load(const GgufFile& file,
                                                            const ModelConfig& config,
                                                            LayerRange range);
  // As Load, for rank shard.rank of a group of shard.size: INVALID_ARGUMENT
  // (naming the numbers) when CheckTensorParallel refuses the degree or a
  // column block is not aligned to its quantisation blocks.
  static absl::StatusOr<std::unique_ptr<ModelWeights>> LoadShard(const GgufFile& file,
                                                                 const ModelConfig& config,
                                                                 LayerRange range,
                                                                 ShardSpec shard);

  // The dimensions this process computes with. For a shard, n_head,
  // n_kv_head and n_ff are per rank (ShardConfig); model_config() is the
  // whole model's.
  const ModelConfig& config() const { return config_; }
  const ModelConfig& model_config() const { return model_config_; }
  ShardSpec shard() const { return shard_; }
  // Vocabulary rows of token_embedding() and output(): all of them unless
  // this is a shard.
  IndexRange vocab_rows() const { return vocab_rows_; }
  LayerRange range() const { return range_; }
  bool has_embedding() const { return range_.begin == 0; }
  bool has_head() const { return range_.end == config_.n_layer; }

  // Valid only when has_embedding(). Row i is token vocab_rows().begin + i.
  const kernels::WeightMatrix& token_embedding() const { return token_embd_; }
  // Valid only when has_head(); the LM head is the embedding when tied.
  const kernels::WeightMatrix& output() const { return output_; }
  const float* output_norm() const { return output_norm_; }
  // rope_dim/2 Llama-3 style frequency divisors, or nullptr.
  const float* rope_freq_factors() const {
    return rope_freq_factors_.empty() ? nullptr : rope_freq_factors_.data();
  }
  // `layer` is a global layer index inside range().
  const LayerWeights& layer(int layer) const { return layers_[layer - range_.begin]; }

  // Bytes of tensor data this range (and shard) reads: what a worker must hold.
  uint64_t weight_bytes() const { return weight_bytes_; }

 private:
  ModelWeights() = default;
  // Counts a matrix the process holds.
  kernels::WeightMatrix Hold(const kernels::WeightMatrix& m);
  // Row-parallel column block copied into owned storage, or the whole matrix.
  absl::StatusOr<kernels::WeightMatrix> Columns(const kernels::WeightMatrix& m, IndexRange cols,
                                                const std::string& name);
  absl::StatusOr<kernels::WeightMatrix> Matrix(const GgufFile& file, const std::string& name,
                                               int64_t rows, int64_t cols);
  absl::StatusOr<const float*> Vector(const GgufFile& file, const std::string& name,
                                      int64_t n);

  ModelConfig config_;
  ModelConfig model_config_;
  std::string file_path_;
  ShardSpec shard_;
  IndexRange vocab_rows_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> owned_matrices_;
  LayerRange range_;
  kernels::WeightMatrix token_embd_;
  kernels::WeightMatrix output_;
  const float* output_norm_ = nullptr;
  std::vector<float> rope_freq_factors_;
  std::vector<LayerWeights> layers_;
  std::vector<std::unique_ptr<std::vector<float>>> owned_vectors_;
  uint64_t weight_bytes_ = 0;
};

// Maps a GGUF storage type to the kernels' format, or UNIMPLEMENTED.
absl::StatusOr<kernels::DType> KernelDType(GgmlType type);

}  // namespace tessera

#endif  // TESSERA_ENGINE_MODEL_WEIGHTS_H_
