// Opening a model by path, whatever its format: a GGUF file, or a Hugging
// Face checkpoint directory (config.json, *.safetensors, tokenizer.json).
//
// Every binary that takes --model goes through these two functions, so the
// coordinator, the workers and `tessera run`/`plan` accept both formats the
// same way. Thread-safe (they only read files).
#ifndef TESSERA_COMMON_SAFETENSORS_MODEL_SOURCE_H_
#define TESSERA_COMMON_SAFETENSORS_MODEL_SOURCE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/gguf/gguf_file.h"
#include "common/sampling_params.h"
#include "common/tokenizer/tokenizer.h"

namespace tessera {

// True when `path` names a directory (read as a Hugging Face checkpoint).
bool IsModelDirectory(const std::string& path);

// GgufFile::Open for a file; OpenHfDirectoryAsGguf (hf_gguf_view.h) for a
// directory.
absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path);

// The model's tokenizer: the GGUF's tokenizer.* metadata, or the directory's
// tokenizer.json with tokenizer_config.json when present (NOT_FOUND naming
// the directory when tokenizer.json is missing). For a directory, the
// eos_token_id of generation_config.json (an id or a list of ids) also ends
// generation (Tokenizer::IsEndOfGeneration); without that file, config.json's
// eos_token_id does, as in Hugging Face's generate();
// INVALID_ARGUMENT naming that file and key for malformed JSON, a value of
// another type or an id outside the tokenizer's vocabulary. `file` is what
// OpenModelFile(path) returned.
absl::StatusOr<std::unique_ptr<Tokenizer>> OpenModelTokenizer(const std::string& path,
                                                              const GgufFile& file);

// The sampling values the model recommends: for a directory, temperature,
// top_k, top_p, min_p and repetition_penalty from generation_config.json,
// those present (do_sample is ignored, as vLLM does: a request or a flag
// decides greedy vs sampled); none for a GGUF file or a directory without
// the file. INVALID_ARGUMENT naming the file and key for malformed JSON, a
// non-number or a value out of its range.
absl::StatusOr<SamplingDefaults> ModelSamplingDefaults(const std::string& path);

}  // namespace tessera

#endif  // TESSERA_COMMON_SAFETENSORS_MODEL_SOURCE_H_
