// `tessera plan`: how a model would be split over a set of workers, and what
// context × concurrency fits, computed from the GGUF header alone.
//
// Like the coordinator it stands for, this never loads weights and never
// links the engine: it opens the file (a memory map; only the header pages
// are read) and runs the planner.
#ifndef TESSERA_CLI_PLAN_COMMAND_H_
#define TESSERA_CLI_PLAN_COMMAND_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/planner.h"

namespace tessera {

struct PlanCommandOptions {
  std::string model_path;
  std::vector<WorkerCapacity> workers;
  PlanOptions plan;
};

// Builds the worker list from comma-separated byte sizes: memories
// ("24GiB,16GiB") and, optionally, bandwidths in bytes per second
// ("20GB,10GB", a trailing "/s" allowed), one per worker or none. Workers are
// named w0, w1, ... . INVALID_ARGUMENT naming the entry that does not parse,
// or when the two lists differ in length.
absl::StatusOr<std::vector<WorkerCapacity>> ParseWorkerList(std::string_view memories,
                                                            std::string_view bandwidths);

// Prints FormatPlan's table to stdout. Returns the planner's status
// (RESOURCE_EXHAUSTED, with the numbers, when the model does not fit), or the
// file's when it cannot be read.
absl::Status PlanCommand(const PlanCommandOptions& options);

}  // namespace tessera

#endif  // TESSERA_CLI_PLAN_COMMAND_H_
