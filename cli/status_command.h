// `tessera status`: what a running cluster is doing, asked of its
// coordinator (Inference.GetClusterStatus, admin only): each replica's
// state, queue and KV use, stage by stage the worker serving it (address,
// device, layers, state, heartbeat age, step p50/p99), idle workers, and
// the totals. A table for people; --json (the message as JSON) for
// scripts; --watch redraws it every --interval seconds until interrupted.
#ifndef TESSERA_CLI_STATUS_COMMAND_H_
#define TESSERA_CLI_STATUS_COMMAND_H_

#include <string>

#include "absl/status/status.h"
#include "cli/client_connection.h"
#include "tessera/v1/inference.pb.h"

namespace tessera {

struct StatusCommandOptions {
  ClientConnection connection;
  bool json = false;
  bool watch = false;
  double interval_seconds = 2;
};

// The coordinator's error (UNAUTHENTICATED, PERMISSION_DENIED for a key
// that is not an admin's, UNAVAILABLE when it cannot be reached), or OK
// once printed (with --watch: only on an error).
absl::Status StatusCommand(const StatusCommandOptions& options);

// The table `tessera status` prints (exposed for tests).
std::string FormatClusterStatus(const tessera::v1::ClusterStatus& status);

}  // namespace tessera

#endif  // TESSERA_CLI_STATUS_COMMAND_H_
