#include "common/sampling_params.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace tessera {

absl::Status ValidateSamplingParams(const SamplingParams& p, std::string* field_out) {
  auto bad = [field_out](const char* field, double value, const char* range) {
    if (field_out != nullptr) *field_out = field;
    return absl::InvalidArgumentError(
        absl::StrFormat("sampling parameter %s = %g is out of range %s", field, value, range));
  };
  if (!(p.temperature >= 0.0f && p.temperature <= 100.0f)) {
    return bad("temperature", p.temperature, "[0, 100]");
  }
  if (p.top_k < 0) return bad("top_k", p.top_k, "[0, vocab]");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("top_p", p.top_p, "(0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("min_p", p.min_p, "[0, 1]");
  if (!(p.repetition_penalty > 0.0f && std::isfinite(p.repetition_penalty))) {
    return bad("repetition_penalty", p.repetition_penalty, "(0, inf)");
  }
  if (p.repeat_last_n < 0) return bad("repeat_last_n", p.repeat_last_n, "[0, inf)");
  return absl::OkStatus();
}

SamplingParams SamplingDefaults::Apply(SamplingParams base) const {
  if (temperature) base.temperature = *temperature;
  if (top_k) base.top_k = *top_k;
  if (top_p) base.top_p = *top_p;
  if (min_p) base.min_p = *min_p;
  if (repetition_penalty) base.repetition_penalty = *repetition_penalty;
  if (repeat_last_n) base.repeat_last_n = *repeat_last_n;
  if (seed) base.seed = *seed;
  return base;
}

std::string SamplingDefaults::ToString() const {
  std::string out;
  auto add = [&out](const char* name, const std::string& value) {
    out += absl::StrFormat("%s%s=%s", out.empty() ? "" : " ", name, value);
  };
  if (temperature) add("temperature", absl::StrFormat("%g", *temperature));
  if (top_k) add("top_k", absl::StrFormat("%d", *top_k));
  if (top_p) add("top_p", absl::StrFormat("%g", *top_p));
  if (min_p) add("min_p", absl::StrFormat("%g", *min_p));
  if (repetition_penalty) add("repetition_penalty", absl::StrFormat("%g", *repetition_penalty));
  if (repeat_last_n) add("repeat_last_n", absl::StrFormat("%d", *repeat_last_n));
  if (seed) add("seed", absl::StrFormat("%d", *seed));
  return out.empty() ? "none" : out;
}

}  // namespace tessera
