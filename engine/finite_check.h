// Finding NaN and infinity in float data that crosses a trust boundary.
//
// A stage refuses hidden states with a non-finite value (a faulty peer or a
// numerical fault upstream) before running them, and the last stage never
// samples from a non-finite logits row: sampling NaN picks an arbitrary
// token, so the request would stream garbage instead of failing.
//
// The scan reads each value once with no branch per value (a block is
// tested as a whole), so it costs about one pass over the data at memory
// speed: n_embd floats per token in, vocab floats per sampled token out,
// against the weights' bytes per token of the forward pass itself.
//
// Thread-safety: pure functions.
#ifndef TESSERA_ENGINE_FINITE_CHECK_H_
#define TESSERA_ENGINE_FINITE_CHECK_H_

#include <cstdint>

#include "absl/types/span.h"

namespace tessera {

// The index of the first NaN or +-infinity in `values`; -1 if there is none.
int64_t FirstNonFinite(absl::Span<const float> values);

}  // namespace tessera

#endif  // TESSERA_ENGINE_FINITE_CHECK_H_
