// What a request stream delivered, for scheduler and router tests: every
// token id, and how and when it ended.
#ifndef TESSERA_TESTS_COORDINATOR_STREAM_OUTCOME_H_
#define TESSERA_TESTS_COORDINATOR_STREAM_OUTCOME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/request_stream.h"

namespace tessera::testing {

struct Outcome {
  std::vector<int32_t> ids;
  absl::Status status;
  std::string finish_reason;
  bool ended = false;
  absl::Time end_time;  // when the final event was taken
};

// Takes every event until the final one (or `timeout` without one).
inline Outcome Drain(RequestStream& stream, absl::Duration timeout = absl::Seconds(30)) {
  Outcome o;
  const absl::Time deadline = absl::Now() + timeout;
  RequestEvent e;
  while (absl::Now() < deadline && stream.Pop(&e, deadline - absl::Now())) {
    o.ids.insert(o.ids.end(), e.token_ids.begin(), e.token_ids.end());
    if (e.final) {
      o.status = e.status;
      o.finish_reason = e.finish_reason;
      o.ended = true;
      o.end_time = absl::Now();
      break;
    }
  }
  return o;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_COORDINATOR_STREAM_OUTCOME_H_
