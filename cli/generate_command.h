// `tessera generate`: stream a completion from a running cluster's
// coordinator over gRPC (tessera.v1.Inference/Generate).
#ifndef TESSERA_CLI_GENERATE_COMMAND_H_
#define TESSERA_CLI_GENERATE_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/client_connection.h"
#include "common/sampling_params.h"

namespace tessera {

struct GenerateCommandOptions {
  ClientConnection connection;
  std::string prompt;
  // Send the prompt as one user chat message (the coordinator applies the
  // model's chat template and treats the content as plain text).
  bool chat = false;
  int32_t max_tokens = 128;
  // The sampling flags given on the command line (the coordinator applies
  // the model's defaults, then Tessera's, to the others) and the seed.
  SamplingDefaults sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  // Per-request deadline in seconds; 0 = none.
  double timeout_seconds = 0;
};

// Streams the generated text (only) to stdout and one statistics line to
// stderr; the coordinator's error status, code and message, otherwise.
absl::Status GenerateCommand(const GenerateCommandOptions& options);

}  // namespace tessera

#endif  // TESSERA_CLI_GENERATE_COMMAND_H_
