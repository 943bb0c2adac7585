#include "engine/finite_check.h"

#include <cstring>

namespace tessera {

int64_t FirstNonFinite(absl::Span<const float> values) {
  constexpr uint32_t kExponent = 0x7f800000u;  // all ones: infinity or NaN
  constexpr size_t kBlock = 256;
  const size_t n = values.size();
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t end = start + kBlock < n ? start + kBlock : n;
    // Branch-free over the block so the compiler vectorises it; only a
    // block that holds a bad value is searched value by value.
    // A value is not finite iff its magnitude bits reach the exponent's
    // all-ones pattern, i.e. iff adding one exponent step carries into bit
    // 31. OR-ing those sums needs only integer adds (SSE2 has them), so
    // the loop vectorises on every x86-64.
    uint32_t carries = 0;
    for (size_t i = start; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof(bits));
      carries |= (bits & 0x7fffffffu) + 0x00800000u;
    }
    if ((carries & 0x80000000u) == 0) continue;
    for (size_t i = start; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof(bits));
      if ((bits & kExponent) == kExponent) return static_cast<int64_t>(i);
    }
  }
  return -1;
}

}  // namespace tessera
