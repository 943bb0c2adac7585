// RmsNorm with ggml's numerics: the sum of squares of float products is
// accumulated in double, left to right, so it is exact enough to be ISA- and
// batch-independent; the mean is rounded to float before adding eps.
#include <cmath>

#include "kernels/kernels.h"

namespace tessera::kernels {

void RmsNorm(const float* x, const float* weight, int64_t tokens, int64_t dim, float eps,
             float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float* xt = x + t * dim;
    float* yt = y + t * dim;
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xt[i] * xt[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(dim));
    const float scale = 1.0f / std::sqrt(mean + eps);
    // ggml scales first and multiplies by the weight as a separate op.
    for (int64_t i = 0; i < dim; ++i) yt[i] = (xt[i] * scale) * weight[i];
  }
}

}  // namespace tessera::kernels
