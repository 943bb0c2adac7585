// Runtime instruction-set selection for the CPU kernels.
//
// The library is built for baseline x86-64; per-ISA kernels (AVX2, AVX-512)
// are compiled in separate files and chosen at run time. The active ISA is
// the best one the CPU and OS support, unless the environment variable
// TESSERA_ISA=scalar|avx2|avx512 (read once, on first use) asks for a lower
// one. Results are bitwise reproducible within one ISA; different ISAs may
// differ in the last bits.
//
// Thread-safety: ActiveIsa() is safe from any thread. SetIsaForTesting() is
// for tests only and must not race with running kernels.
#ifndef TESSERA_KERNELS_CPU_ISA_H_
#define TESSERA_KERNELS_CPU_ISA_H_

#include <vector>

namespace tessera::kernels {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// "scalar", "avx2" or "avx512".
const char* IsaName(Isa isa);

// The best ISA this CPU and OS support (CPUID feature bits plus XGETBV for the
// register state the OS saves). AVX2 means AVX2+FMA+F16C; AVX-512 means
// F+BW+VL+DQ+VNNI on top of that.
Isa DetectIsa();

// Every ISA this machine can run, lowest first (always includes kScalar).
std::vector<Isa> SupportedIsas();

// The ISA the kernels currently use.
Isa ActiveIsa();

// Makes the kernels use `isa`. Returns false, changing nothing, if this
// machine cannot run it.
bool SetIsaForTesting(Isa isa);

}  // namespace tessera::kernels

#endif  // TESSERA_KERNELS_CPU_ISA_H_
