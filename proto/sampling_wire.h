// SamplingParams as a client puts them in a tessera.v1.GenerateRequest. One
// definition for every client in the tree (`tessera generate`, `tessera
// bench`, the cluster tests), so a new sampling field is sent by all of them.
#ifndef TESSERA_PROTO_SAMPLING_WIRE_H_
#define TESSERA_PROTO_SAMPLING_WIRE_H_

#include "common/sampling_params.h"
#include "tessera/v1/inference.pb.h"
#include "tessera/v1/stage.pb.h"

namespace tessera {

inline void SamplingToRequest(const SamplingParams& p, tessera::v1::SamplingParameters* s) {
  s->set_temperature(p.temperature);
  s->set_top_k(p.top_k);
  s->set_top_p(p.top_p);
  s->set_min_p(p.min_p);
  s->set_repetition_penalty(p.repetition_penalty);
  s->set_repeat_last_n(p.repeat_last_n);
  s->set_seed(p.seed);
}

// Only the fields a user gave (`given`) plus the seed: the coordinator fills
// the rest from the model's recommended values, then Tessera's defaults, so
// `tessera generate` samples as `tessera run` does on the same model.
inline void GivenSamplingToRequest(const SamplingDefaults& given, uint64_t seed,
                                   tessera::v1::SamplingParameters* s) {
  if (given.temperature) s->set_temperature(*given.temperature);
  if (given.top_k) s->set_top_k(*given.top_k);
  if (given.top_p) s->set_top_p(*given.top_p);
  if (given.min_p) s->set_min_p(*given.min_p);
  if (given.repetition_penalty) s->set_repetition_penalty(*given.repetition_penalty);
  s->set_seed(seed);
}

// The same values as the coordinator hands them to the last stage, and back.
inline void SamplingToWire(const SamplingParams& p, tessera::v1::StageSampling* w) {
  w->set_temperature(p.temperature);
  w->set_top_k(p.top_k);
  w->set_top_p(p.top_p);
  w->set_min_p(p.min_p);
  w->set_repetition_penalty(p.repetition_penalty);
  w->set_repeat_last_n(p.repeat_last_n);
  w->set_seed(p.seed);
}

inline SamplingParams SamplingFromWire(const tessera::v1::StageSampling& w) {
  SamplingParams p;
  p.temperature = w.temperature();
  p.top_k = w.top_k();
  p.top_p = w.top_p();
  p.min_p = w.min_p();
  p.repetition_penalty = w.repetition_penalty();
  p.repeat_last_n = w.repeat_last_n();
  p.seed = w.seed();
  return p;
}

}  // namespace tessera

#endif  // TESSERA_PROTO_SAMPLING_WIRE_H_
