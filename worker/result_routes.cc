#include "worker/result_routes.h"

#include <utility>

namespace tessera {

std::unique_ptr<ResultRoutes::Route> ResultRoutes::Open(uint64_t session, Writer writer) {
  std::unique_ptr<Route> route(new Route(this, session));
  absl::MutexLock lock(&mu_);
  routes_[session] = Entry{route.get(), std::move(writer)};
  return route;
}

bool ResultRoutes::Deliver(uint64_t session, const tessera::v1::StepResult& result) {
  absl::MutexLock lock(&mu_);
  auto it = routes_.find(session);
  return it != routes_.end() && it->second.writer(result);
}

void ResultRoutes::Close(uint64_t session, Route* route) {
  absl::MutexLock lock(&mu_);
  auto it = routes_.find(session);
  if (it != routes_.end() && it->second.route == route) routes_.erase(it);
}

}  // namespace tessera
