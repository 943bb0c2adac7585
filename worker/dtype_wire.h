// kernels::DType <-> tessera.v1.DType (types.proto), for the two element
// types that cross the wire: hidden states and the KV cache. The rest of
// tessera.v1's shared types convert in proto/convert.h; this one lives here
// because proto/ may not see the kernels.
//
// Thread-safety: pure functions.
#ifndef TESSERA_WORKER_DTYPE_WIRE_H_
#define TESSERA_WORKER_DTYPE_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "kernels/dtype.h"
#include "tessera/v1/types.pb.h"

namespace tessera {

// The element types with a wire name.
struct WireDType {
  kernels::DType type;
  tessera::v1::DType wire;
};
inline constexpr WireDType kWireDTypes[] = {
    {kernels::DType::kF32, tessera::v1::DTYPE_F32},
    {kernels::DType::kF16, tessera::v1::DTYPE_F16},
    {kernels::DType::kBF16, tessera::v1::DTYPE_BF16},
};

// F32, F16 and BF16 have wire names; any other type is UNSPECIFIED.
inline tessera::v1::DType DTypeToProto(kernels::DType t) {
  for (const WireDType& d : kWireDTypes) {
    if (d.type == t) return d.wire;
  }
  return tessera::v1::DTYPE_UNSPECIFIED;
}

// UNSPECIFIED reads as `unspecified`; a value outside the enum is
// INVALID_ARGUMENT naming `field` and the number.
inline absl::StatusOr<kernels::DType> DTypeFromProto(int value, kernels::DType unspecified,
                                                     const std::string& field) {
  if (value == tessera::v1::DTYPE_UNSPECIFIED) return unspecified;
  for (const WireDType& d : kWireDTypes) {
    if (d.wire == value) return d.type;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s = %d is not a tessera.v1.DType", field, value));
}

}  // namespace tessera

#endif  // TESSERA_WORKER_DTYPE_WIRE_H_
