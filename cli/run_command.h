// `tessera run`: generate from a local model file in this process.
#ifndef TESSERA_CLI_RUN_COMMAND_H_
#define TESSERA_CLI_RUN_COMMAND_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/sampler.h"
#include "engine/step_runner_factory.h"

namespace tessera {

struct RunOptions {
  std::string model_path;
  std::string prompt;
  // Wrap the prompt as one user message in the model's chat template.
  bool chat = false;
  int32_t max_tokens = 128;
  int threads = 1;
  int64_t max_context = 0;
  // Store the KV cache as IEEE half instead of f32.
  bool kv_f16 = false;
  // Where the model runs, and CPU tensor-parallel ranks.
  Device device;
  int tp = 1;
  SamplingParams sampling;
};

// Streams the generated text (only) to stdout as it is produced and prints one
// statistics line to stderr at the end.
absl::Status RunCommand(const RunOptions& options);

}  // namespace tessera

#endif  // TESSERA_CLI_RUN_COMMAND_H_
