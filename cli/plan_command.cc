#include "cli/plan_command.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/gguf/gguf_file.h"
#include "common/safetensors/model_source.h"
#include "base/status_macros.h"
#include "coordinator/model_footprint.h"

namespace tessera {
namespace {

absl::StatusOr<std::vector<uint64_t>> ParseSizeList(const char* flag, std::string_view text,
                                                    bool per_second) {
  std::vector<uint64_t> sizes;
  for (absl::string_view item : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    if (per_second) absl::ConsumeSuffix(&item, "/s");
    absl::StatusOr<uint64_t> bytes = ParseByteSize(std::string_view(item.data(), item.size()));
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", bytes.status().message()));
    }
    sizes.push_back(*bytes);
  }
  return sizes;
}

}  // namespace

absl::StatusOr<std::vector<WorkerCapacity>> ParseWorkerList(std::string_view memories,
                                                            std::string_view bandwidths) {
  if (memories.empty()) {
    return absl::InvalidArgumentError("--workers is required, e.g. --workers 24GiB,16GiB");
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> memory, ParseSizeList("workers", memories, false));
  std::vector<uint64_t> bandwidth;
  if (!bandwidths.empty()) {
    ASSIGN_OR_RETURN(bandwidth, ParseSizeList("bandwidths", bandwidths, true));
    if (bandwidth.size() != memory.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--bandwidths lists ", bandwidth.size(), " values but --workers lists ", memory.size()));
    }
  }
  std::vector<WorkerCapacity> workers;
  for (size_t i = 0; i < memory.size(); ++i) {
    WorkerCapacity w;
    w.name = absl::StrCat("w", i);
    w.memory_bytes = memory[i];
    if (!bandwidth.empty()) w.bandwidth_bytes_per_s = static_cast<double>(bandwidth[i]);
    workers.push_back(std::move(w));
  }
  return workers;
}

absl::Status PlanCommand(const PlanCommandOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenModelFile(options.model_path));
  ASSIGN_OR_RETURN(ModelFootprint model, ModelFootprint::FromGguf(*file));
  ASSIGN_OR_RETURN(PipelinePlan plan, PlanPipeline(model, options.workers, options.plan));
  const std::string table = FormatPlan(model, options.workers, options.plan, plan);
  std::fwrite(table.data(), 1, table.size(), stdout);
  return absl::OkStatus();
}

}  // namespace tessera
