// The row loop every SIMD row kernel shares: for each weight row, the tokens
// from a.xt.tile_tokens on (those before it went through the AVX-512 tile
// kernel; 0 otherwise) in groups of kTokenGroup, so a kernel unpacks a
// row's weights once per group, then the 1-3 left over.
//
// Included only by the per-ISA files (matmul_avx2.cc, matmul_avx512.cc,
// superblock_avx2.cc), and instantiated only with kernel types local to
// each of them (anonymous namespaces), so no two files compiled with
// different -m flags ever share an instantiation (matmul_internal.h).
//
// Thread-safety: as the kernels: disjoint row ranges may run in parallel.
#ifndef TESSERA_KERNELS_CPU_ROW_GROUPS_H_
#define TESSERA_KERNELS_CPU_ROW_GROUPS_H_

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_internal.h"

namespace tessera::kernels::internal {

template <typename Kernel>
void RunRowGroups(const MatMulArgs& a, int64_t row_begin, int64_t row_end) {
  static_assert(kTokenGroup == 4, "the remainder switch assumes groups of 4");
  const auto* base = static_cast<const uint8_t*>(a.w->data);
  for (int64_t o = row_begin; o < row_end; ++o) {
    const uint8_t* row = base + static_cast<size_t>(o) * a.w->row_bytes;
    int64_t t = a.xt.tile_tokens;
    for (; t + kTokenGroup <= a.tokens; t += kTokenGroup) {
      Kernel::template Run<kTokenGroup>(a, row, o, t);
    }
    switch (a.tokens - t) {
      case 3:
        Kernel::template Run<3>(a, row, o, t);
        break;
      case 2:
        Kernel::template Run<2>(a, row, o, t);
        break;
      case 1:
        Kernel::template Run<1>(a, row, o, t);
        break;
      default:
        break;
    }
  }
}

}  // namespace tessera::kernels::internal

#endif  // TESSERA_KERNELS_CPU_ROW_GROUPS_H_
