// The x86 kernels with AVX-VNNI's byte dot besides AVX2 (Alder Lake and later
// Intel cores, including the N100-class boxes, and Zen 5).
#include "daemon/engine/quant_kernels.h"

#if defined(__x86_64__)
#define EDGELLM_X86_BYTE_DOT EDGELLM_X86_AVXVNNI
#include "daemon/engine/quant_kernels_x86.h"

namespace edgellm::engine::kernels {

const KernelSet* AvxVnniKernels() {
  static const bool supported = [] {
    return CpuRunsAvx2() && __builtin_cpu_supports("avxvnni");
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
