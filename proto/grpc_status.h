// absl::Status -> grpc::Status with the same code and message: every
// service answers its callers through this.
//
// Thread-safety: a pure function.
#ifndef TESSERA_PROTO_GRPC_STATUS_H_
#define TESSERA_PROTO_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace tessera {

inline grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace tessera

#endif  // TESSERA_PROTO_GRPC_STATUS_H_
