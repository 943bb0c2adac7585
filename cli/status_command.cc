#include "cli/status_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

// Columns padded to their widest cell, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      absl::StrAppend(&line, r[i]);
      if (i + 1 < r.size()) line.append(width[i] - r[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string Seconds(double s) {
  if (s <= 0) return "-";
  if (s < 1e-3) return absl::StrFormat("%.0fus", s * 1e6);
  if (s < 1) return absl::StrFormat("%.1fms", s * 1e3);
  return absl::StrFormat("%.1fs", s);
}

std::string Kv(int64_t used, int64_t total) {
  if (total <= 0) return "-";
  return absl::StrFormat("%d/%d (%.0f%%)", used, total, 100.0 * used / total);
}

std::vector<std::string> WorkerRow(const v1::WorkerStatusLine& w) {
  return {w.stage() < 0 ? "-" : absl::StrCat(w.stage()),
          w.worker_id(),
          w.address(),
          w.tensor_parallel() > 1 ? absl::StrCat(w.device(), " tp ", w.tensor_parallel())
                                  : w.device(),
          w.layer_end() > w.layer_begin() ? absl::StrCat(w.layer_begin(), "-", w.layer_end() - 1)
                                          : "-",
          w.state(),
          absl::StrFormat("%.1fs", w.heartbeat_age_seconds()),
          w.busy_seconds() > 0 ? Seconds(w.busy_seconds()) : "-",
          Seconds(w.step_p50_seconds()),
          Seconds(w.step_p99_seconds())};
}

const std::vector<std::string> kWorkerHeader = {"STAGE", "WORKER",    "ADDRESS", "DEVICE",
                                                "LAYERS", "STATE",    "HEARTBEAT", "IN STEP",
                                                "STEP p50", "STEP p99"};

absl::StatusOr<v1::ClusterStatus> Fetch(v1::Inference::Stub& stub,
                                        const ClientConnection& connection) {
  grpc::ClientContext context;
  Authorize(connection, &context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ClusterStatus status;
  const grpc::Status s = stub.GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat(connection.coordinator, ": ", s.error_message()));
  }
  return status;
}

}  // namespace

std::string FormatClusterStatus(const v1::ClusterStatus& st) {
  std::string out = absl::StrFormat(
      "model %s, coordinator %s (%s)\n"
      "%d of %d replica(s) serving, %d worker(s); %d running, %d waiting; KV %s; %d requests "
      "finished, %d tokens generated, %d migrated\n",
      st.model(), st.version(), st.commit(), st.replicas_serving(), st.replicas_size(),
      st.workers(), st.running(), st.waiting(), Kv(st.kv_blocks_used(), st.kv_blocks_total()),
      st.requests_finished(), st.generated_tokens(), st.migrations());
  for (const v1::ReplicaStatusLine& r : st.replicas()) {
    absl::StrAppend(&out, "\n",
                    Table({{"REPLICA", "STATE", "RUNNING", "WAITING", "KV BLOCKS"},
                           {absl::StrCat(r.replica()), r.state(), absl::StrCat(r.running()),
                            absl::StrCat(r.waiting()),
                            Kv(r.kv_blocks_used(), r.kv_blocks_total())}},
                          ""));
    if (r.stages_size() > 0) {
      std::vector<std::vector<std::string>> rows = {kWorkerHeader};
      for (const v1::WorkerStatusLine& w : r.stages()) rows.push_back(WorkerRow(w));
      absl::StrAppend(&out, Table(rows, "  "));
    }
  }
  if (st.idle_workers_size() > 0) {
    std::vector<std::vector<std::string>> rows = {kWorkerHeader};
    for (const v1::WorkerStatusLine& w : st.idle_workers()) rows.push_back(WorkerRow(w));
    absl::StrAppend(&out, "\nIDLE WORKERS\n", Table(rows, "  "));
  }
  return out;
}

absl::Status StatusCommand(const StatusCommandOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(options.connection);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Inference::NewStub(*channel);
  const bool clear = options.watch && isatty(fileno(stdout));
  while (true) {
    absl::StatusOr<v1::ClusterStatus> status = Fetch(*stub, options.connection);
    if (!status.ok()) return status.status();
    std::string text;
    if (options.json) {
      google::protobuf::util::JsonPrintOptions jo;
      jo.preserve_proto_field_names = true;
      jo.always_print_primitive_fields = true;
      if (!google::protobuf::util::MessageToJsonString(*status, &text, jo).ok()) {
        return absl::InternalError("the status could not be printed as JSON");
      }
      text += "\n";
    } else {
      text = FormatClusterStatus(*status);
    }
    if (clear) std::fputs("\033[H\033[2J", stdout);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (!options.watch) return absl::OkStatus();
    if (!clear) std::fputs("\n", stdout);
    absl::SleepFor(absl::Seconds(options.interval_seconds));
  }
}

}  // namespace tessera
