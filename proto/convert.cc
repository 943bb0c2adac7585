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

SamplingParams SamplingFromProto(const tessera::v1::SamplingParameters& w,
                                 const SamplingParams& base) {
  SamplingParams p = base;
  if (w.has_temperature()) p.temperature = w.temperature();
  if (w.has_top_k()) p.top_k = w.top_k();
  if (w.has_top_p()) p.top_p = w.top_p();
  if (w.has_min_p()) p.min_p = w.min_p();
  if (w.has_repetition_penalty()) p.repetition_penalty = w.repetition_penalty();
  if (w.has_repeat_last_n()) p.repeat_last_n = w.repeat_last_n();
  if (w.has_seed()) p.seed = w.seed();
  return p;
}

void GivenSamplingToProto(const SamplingDefaults& given, uint64_t seed,
                          tessera::v1::SamplingParameters* w) {
  if (given.temperature) w->set_temperature(*given.temperature);
  if (given.top_k) w->set_top_k(*given.top_k);
  if (given.top_p) w->set_top_p(*given.top_p);
  if (given.min_p) w->set_min_p(*given.min_p);
  if (given.repetition_penalty) w->set_repetition_penalty(*given.repetition_penalty);
  w->set_seed(seed);
}

}  // namespace tessera
