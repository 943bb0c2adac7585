#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tessera::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t ReadXcr0() {
  uint32_t lo = 0, hi = 0;
  // xgetbv via asm so this file needs no -mxsave.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

Isa DetectIsaUncached() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (!osxsave || !avx || !fma || !f16c) return Isa::kScalar;
  const uint64_t xcr0 = ReadXcr0();
  if ((xcr0 & 0x6) != 0x6) return Isa::kScalar;  // XMM and YMM state
  if (__get_cpuid_max(0, nullptr) < 7) return Isa::kScalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  if (!avx2) return Isa::kScalar;
  const bool avx512f = b & (1u << 16);
  const bool avx512dq = b & (1u << 17);
  const bool avx512bw = b & (1u << 30);
  const bool avx512vl = b & (1u << 31);
  const bool avx512vnni = c & (1u << 11);
  const bool zmm_state = (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM0-15 hi, ZMM16-31
  if (avx512f && avx512dq && avx512bw && avx512vl && avx512vnni && zmm_state) {
    return Isa::kAvx512;
  }
  return Isa::kAvx2;
}
#else
Isa DetectIsaUncached() { return Isa::kScalar; }
#endif

Isa InitialIsa() {
  const Isa best = DetectIsa();
  const char* env = std::getenv("TESSERA_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa wanted;
  if (std::strcmp(env, "scalar") == 0) {
    wanted = Isa::kScalar;
  } else if (std::strcmp(env, "avx2") == 0) {
    wanted = Isa::kAvx2;
  } else if (std::strcmp(env, "avx512") == 0) {
    wanted = Isa::kAvx512;
  } else {
    std::fprintf(stderr, "tessera: ignoring TESSERA_ISA=%s (want scalar, avx2 or avx512)\n", env);
    return best;
  }
  if (static_cast<int>(wanted) > static_cast<int>(best)) {
    std::fprintf(stderr, "tessera: TESSERA_ISA=%s not supported by this CPU; using %s\n", env,
                 IsaName(best));
    return best;
  }
  return wanted;
}

std::atomic<int>& ActiveIsaSlot() {
  static std::atomic<int> slot{static_cast<int>(InitialIsa())};
  return slot;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

Isa DetectIsa() {
  static const Isa detected = DetectIsaUncached();
  return detected;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(DetectIsa()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

Isa ActiveIsa() { return static_cast<Isa>(ActiveIsaSlot().load(std::memory_order_relaxed)); }

bool SetIsaForTesting(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(DetectIsa())) return false;
  ActiveIsaSlot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace tessera::kernels
