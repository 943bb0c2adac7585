// The last stage's open Results streams, by session: where a step's result
// goes when its StepRequest names a results_session. The Results handler
// opens a route with the function that writes to its stream and stays in
// the call while the route is open; the Steps handler that computed the
// result writes it through the route on its own thread, so a result costs
// no hand-off between threads.
//
// Thread-safety: every method may be called from any thread. Writes are
// serialised (one write at a time on a stream, as gRPC requires), and
// closing a route waits for a write in progress.
#ifndef TESSERA_WORKER_RESULT_ROUTES_H_
#define TESSERA_WORKER_RESULT_ROUTES_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "tessera/v1/stage.pb.h"

namespace tessera {

class ResultRoutes {
 public:
  // Writes one result to a Results stream; false once the stream is broken.
  using Writer = std::function<bool(const tessera::v1::StepResult&)>;

  // One open session; closes it when destroyed.
  class Route {
   public:
    ~Route() { routes_->Close(session_, this); }
    Route(const Route&) = delete;
    Route& operator=(const Route&) = delete;

   private:
    friend class ResultRoutes;
    Route(ResultRoutes* routes, uint64_t session) : routes_(routes), session_(session) {}
    ResultRoutes* const routes_;
    const uint64_t session_;
  };

  // Opens `session` writing through `writer`, replacing a route already open
  // under it (a coordinator that reconnects); the replaced route receives
  // nothing more.
  std::unique_ptr<Route> Open(uint64_t session, Writer writer);
  // Writes `result` to the session's stream; false if no route is open or
  // the write failed.
  bool Deliver(uint64_t session, const tessera::v1::StepResult& result);

 private:
  struct Entry {
    Route* route = nullptr;
    Writer writer;
  };
  void Close(uint64_t session, Route* route);

  // Held across writes: gRPC allows one write at a time per stream, and a
  // closing route must not be written to.
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> routes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_WORKER_RESULT_ROUTES_H_
