#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"

namespace tessera {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Candidate {
  int32_t id;
  float logit;
};

bool Before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// One pass over `logits`: returns the log-normalizer log(sum(exp(l))),
// summed in double against a running maximum (the sum is rescaled when the
// maximum grows), and keeps in `top` the `n` best candidates by Before.
// `top` is a heap whose front is the worst candidate kept, so most logits
// cost one comparison against it.
float LogNormalizer(absl::Span<const float> logits, int n, std::vector<Candidate>* top) {
  top->clear();
  const size_t keep = n > 0 ? std::min<size_t>(n, logits.size()) : 0;
  top->reserve(keep);
  float max = -INFINITY;
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (l > max) {
      sum = sum * std::exp(static_cast<double>(max) - l) + 1.0;
      max = l;
    } else if (l > -INFINITY) {
      sum += std::exp(static_cast<double>(l) - max);
    }
    if (keep == 0) continue;
    const Candidate c{static_cast<int32_t>(i), l};
    if (top->size() < keep) {
      top->push_back(c);
      std::push_heap(top->begin(), top->end(), Before);
    } else if (Before(c, top->front())) {
      std::pop_heap(top->begin(), top->end(), Before);
      top->back() = c;
      std::push_heap(top->begin(), top->end(), Before);
    }
  }
  std::sort(top->begin(), top->end(), Before);
  return max + static_cast<float>(std::log(sum));
}

std::vector<TokenLogprob> ToLogprobs(const std::vector<Candidate>& top, float log_z) {
  std::vector<TokenLogprob> out;
  out.reserve(top.size());
  for (const Candidate& c : top) out.push_back({c.id, c.logit - log_z});
  return out;
}

}  // namespace

std::vector<int32_t> PenalisedIds(const SamplingParams& params,
                                  absl::Span<const int32_t> recent, int32_t vocab) {
  std::vector<int32_t> ids;
  if (params.repetition_penalty == 1.0f || params.repeat_last_n <= 0) return ids;
  absl::flat_hash_set<int32_t> seen;
  const size_t n = std::min<size_t>(recent.size(), params.repeat_last_n);
  for (size_t i = recent.size() - n; i < recent.size(); ++i) {
    const int32_t id = recent[i];
    if (id < 0 || id >= vocab || !seen.insert(id).second) continue;
    ids.push_back(id);
  }
  return ids;
}

double CounterUniform(uint64_t seed, uint64_t counter) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ SplitMix64(counter + 0x632be59bd9b4e019ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

std::vector<TokenLogprob> TopLogprobs(absl::Span<const float> logits, int n) {
  std::vector<Candidate> top;
  const float log_z = LogNormalizer(logits, n, &top);
  return ToLogprobs(top, log_z);
}

SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, uint64_t counter, bool want_logprob,
                    int top_logprobs) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  std::vector<Candidate> top;
  const float log_z =
      want_logprob || top_logprobs > 0 ? LogNormalizer(logits, top_logprobs, &top) : NAN;
  std::vector<Candidate> cand(vocab);
  for (int32_t i = 0; i < vocab; ++i) cand[i] = {i, logits[i]};

  for (int32_t id : PenalisedIds(params, recent, vocab)) {
    float& l = cand[id].logit;
    l = l > 0 ? l / params.repetition_penalty : l * params.repetition_penalty;
  }

  auto result = [&](int32_t id) {
    return SampledToken{id, logits[id] - log_z, ToLogprobs(top, log_z)};
  };
  if (params.temperature == 0.0f) {
    const Candidate* best = &cand[0];
    for (const Candidate& c : cand) {
      if (Before(c, *best)) best = &c;
    }
    return result(best->id);
  }

  size_t keep = cand.size();
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < keep) {
    keep = params.top_k;
    std::partial_sort(cand.begin(), cand.begin() + keep, cand.end(), Before);
    cand.resize(keep);
  } else {
    std::sort(cand.begin(), cand.end(), Before);
  }

  // Softmax at temperature, in double for a stable cumulative sum.
  std::vector<double> prob(cand.size());
  const double max = cand[0].logit / static_cast<double>(params.temperature);
  double sum = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) {
    prob[i] = std::exp(cand[i].logit / static_cast<double>(params.temperature) - max);
    sum += prob[i];
  }
  for (double& p : prob) p /= sum;

  if (params.top_p < 1.0f) {
    double cum = 0.0;
    size_t i = 0;
    for (; i < prob.size(); ++i) {
      cum += prob[i];
      if (cum >= params.top_p) break;
    }
    keep = std::min(prob.size(), i + 1);
    prob.resize(keep);
    cand.resize(keep);
  }
  if (params.min_p > 0.0f) {
    const double floor = params.min_p * prob[0];
    size_t i = 1;
    while (i < prob.size() && prob[i] >= floor) ++i;
    prob.resize(i);
    cand.resize(i);
  }

  double total = 0.0;
  for (double p : prob) total += p;
  const double u = CounterUniform(params.seed, counter) * total;
  double cum = 0.0;
  for (size_t i = 0; i < prob.size(); ++i) {
    cum += prob[i];
    if (u < cum) return result(cand[i].id);
  }
  return result(cand.back().id);
}

}  // namespace tessera
