// Rotary embedding, llama.cpp's "normal" and "neox" modes. The per-pair angles follow
// ggml_rope_cache_init with freq_scale = attn_factor = 1 and ext_factor = 0:
// theta starts at (float)pos and is multiplied by theta_scale =
// freq_base^(-2/rot_dim) once per pair, in float, and pair i uses
// theta / freq_factors[i]. Repeating that float recurrence (rather than
// computing pow per pair) keeps our angles bitwise equal to llama.cpp's.
#include <cmath>
#include <vector>

#include "kernels/kernels.h"

namespace tessera::kernels {

void Rope(float* x, const int32_t* positions, int64_t tokens, int heads,
          const RopeParams& params) {
  const int pairs = params.rot_dim / 2;
  if (pairs <= 0) return;
  thread_local std::vector<float> cos_sin;
  cos_sin.resize(2 * static_cast<size_t>(pairs));
  const float theta_scale =
      std::pow(params.freq_base, -2.0f / static_cast<float>(params.rot_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    float theta = static_cast<float>(positions[t]);
    for (int i = 0; i < pairs; ++i) {
      const float ff = params.freq_factors != nullptr ? params.freq_factors[i] : 1.0f;
      const float angle = theta / ff;
      cos_sin[2 * i] = std::cos(angle);
      cos_sin[2 * i + 1] = std::sin(angle);
      theta *= theta_scale;
    }
    // The two members of pair i sit `stride` apart, starting at `first(i)`.
    const int stride = params.neox ? pairs : 1;
    for (int h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * static_cast<int64_t>(params.head_dim);
      for (int i = 0; i < pairs; ++i) {
        const float c = cos_sin[2 * i];
        const float s = cos_sin[2 * i + 1];
        const int a = params.neox ? i : 2 * i;
        const float x0 = v[a];
        const float x1 = v[a + stride];
        v[a] = x0 * c - x1 * s;
        v[a + stride] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace tessera::kernels
