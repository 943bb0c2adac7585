#include "proto/convert.h"

namespace tessera {

void SamplingToProto(const SamplingParams& p, tessera::v1::SamplingParameters* w) {
  w->set_temperature(p.temperature);
  w->set_top_k(p.top_k);
  w->set_top_p(p.top_p);
  w->set_min_p(p.min_p);
  w->set_repetition_penalty(p.repetition_penalty);
  w->set_repeat_last_n(p.repeat_last_n);
  w->set_seed(p.seed);
}

SamplingDefaults SamplingGivenFromProto(const tessera::v1::SamplingParameters& w) {
  SamplingDefaults g;
  if (w.has_temperature()) g.temperature = w.temperature();
  if (w.has_top_k()) g.top_k = w.top_k();
  if (w.has_top_p()) g.top_p = w.top_p();
  if (w.has_min_p()) g.min_p = w.min_p();
  if (w.has_repetition_penalty()) g.repetition_penalty = w.repetition_penalty();
  if (w.has_repeat_last_n()) g.repeat_last_n = w.repeat_last_n();
  if (w.has_seed()) g.seed = w.seed();
  return g;
}

SamplingParams SamplingFromProto(const tessera::v1::SamplingParameters& w) {
  return SamplingGivenFromProto(w).Apply(SamplingParams{});
}

void GivenSamplingToProto(const SamplingDefaults& given, uint64_t seed,
                          tessera::v1::SamplingParameters* w) {
  if (given.temperature) w->set_temperature(*given.temperature);
  if (given.top_k) w->set_top_k(*given.top_k);
  if (given.top_p) w->set_top_p(*given.top_p);
  if (given.min_p) w->set_min_p(*given.min_p);
  if (given.repetition_penalty) w->set_repetition_penalty(*given.repetition_penalty);
  if (given.repeat_last_n) w->set_repeat_last_n(*given.repeat_last_n);
  w->set_seed(seed);
}

}  // namespace tessera
