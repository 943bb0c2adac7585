// The one place where tessera.v1 messages shared by several services
// (types.proto) meet Tessera's C++ types. Clients, the coordinator and the
// workers all convert through these, so a new sampling field is carried by
// every hop once it is added here (tests/proto/convert_test.cc round-trips
// each field).
//
// The element-type enum (v1::DType) is converted where kernels are in reach,
// in worker/dtype_wire.h: proto/ sits below the engine and may not see
// kernels::DType.
//
// Thread-safety: pure functions.
#ifndef TESSERA_PROTO_CONVERT_H_
#define TESSERA_PROTO_CONVERT_H_

#include <cstdint>

#include "common/sampling_params.h"
#include "tessera/v1/types.pb.h"

namespace tessera {

// Every field of `p`, set.
void SamplingToProto(const SamplingParams& p, tessera::v1::SamplingParameters* w);

// The full set a coordinator sends a stage (unset fields: SamplingParams{}).
SamplingParams SamplingFromProto(const tessera::v1::SamplingParameters& w);

// Only the fields `w` sets: what a client asked for, applied by admission
// over the model's and the API's defaults.
SamplingDefaults SamplingGivenFromProto(const tessera::v1::SamplingParameters& w);

// Only the fields a user gave (`given`) plus the seed: the coordinator fills
// the rest from the model's recommended values, then Tessera's defaults, so
// `tessera generate` samples as `tessera run` does on the same model.
void GivenSamplingToProto(const SamplingDefaults& given, uint64_t seed,
                          tessera::v1::SamplingParameters* w);

}  // namespace tessera

#endif  // TESSERA_PROTO_CONVERT_H_
