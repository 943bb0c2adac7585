// A Hugging Face checkpoint directory presented as a GgufFile.
//
// Everything in Tessera that reads a model (ModelConfigFromGguf, ModelWeights,
// the planner's footprint, model identity) takes a GgufFile. Rather than teach
// each of them a second format, OpenHfDirectoryAsGguf translates once:
//   - config.json (ModelConfigFromHfConfig) becomes the "{arch}.*" metadata
//     keys llama.cpp's converter would write;
//   - each safetensors tensor gets its GGUF name and shape (dimensions
//     reversed) and points straight into the shard's mapping (zero-copy);
//   - where llama.cpp's layout differs, the tensor is re-laid-out on first
//     access only: the Llama Q and K rows are permuted from rotate-half to
//     adjacent-pair order (what convert_hf_to_gguf.py does), so the same
//     weights give bitwise the same logits from either format, and a worker
//     loading a layer range touches only that range's tensors;
//   - Llama 3 RoPE scaling becomes a rope_freqs.weight tensor.
// The tokenizer is not part of the view: common/safetensors/model_source.h
// opens tokenizer.json beside it.
// The metadata also records the tensor table (tessera.source.tensors), so
// the header hash that model identity starts from covers names, types and
// shapes, as a GGUF header does.
//
// Errors name the directory and the Hugging Face tensor or config key: a
// tensor whose shape contradicts config.json is INVALID_ARGUMENT; a missing
// one NOT_FOUND; a tensor this engine's graph does not use (q_norm, o_proj
// bias, ...) UNIMPLEMENTED, since ignoring it would compute another model.
//
// Thread-safety: the returned GgufFile is safe to read from many threads.
#ifndef TESSERA_COMMON_SAFETENSORS_HF_GGUF_VIEW_H_
#define TESSERA_COMMON_SAFETENSORS_HF_GGUF_VIEW_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"

namespace tessera {

// `dir` holds config.json and model.safetensors (or an index and shards).
absl::StatusOr<std::unique_ptr<GgufFile>> OpenHfDirectoryAsGguf(const std::string& dir);

}  // namespace tessera

#endif  // TESSERA_COMMON_SAFETENSORS_HF_GGUF_VIEW_H_
