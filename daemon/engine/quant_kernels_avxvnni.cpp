// The x86 kernels with AVX-VNNI's byte dot besides AVX2 (Alder Lake and later
// Intel cores, including the N100-class boxes, and Zen 5).
#include "daemon/engine/quant_kernels.h"

#if defined(__x86_64__)
#define EDGELLM_X86_BYTE_DOT EDGELLM_X86_AVXVNNI
#include "daemon/engine/quant_kernels_x86.h"

namespace edgellm::engine::kernels {

const KernelSet* AvxVnniKernels() {
  static const bool supported = [] {
    // CPUID leaf 7, sub-leaf 1, EAX bit 4: not every compiler's __builtin_cpu_supports knows "avxvnni".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool avx_vnni = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax & (1u << 4)) != 0;
    return CpuRunsAvx2() && avx_vnni;
  }();
  static const KernelSet set = X86Kernels("avxvnni");
  return supported ? &set : nullptr;
}

}  // namespace edgellm::engine::kernels

#else

namespace edgellm::engine::kernels {
const KernelSet* AvxVnniKernels() { return nullptr; }
}  // namespace edgellm::engine::kernels

#endif
