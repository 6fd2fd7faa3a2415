// The x86 kernels with AVX2, FMA and F16C (any x86-64 of the last decade).
// This file alone is compiled with those instructions enabled; BestKernels()
// only picks it on a CPU that has them.
#include "daemon/engine/quant_kernels.h"

#if defined(__x86_64__)
#define EDGELLM_X86_BYTE_DOT EDGELLM_X86_MADDUBS
#include "daemon/engine/quant_kernels_x86.h"

namespace edgellm::engine::kernels {

const KernelSet* Avx2Kernels() {
  static const bool supported = CpuRunsAvx2();
  static const KernelSet set = X86Kernels("avx2");
  return supported ? &set : nullptr;
}

}  // namespace edgellm::engine::kernels

#else

namespace edgellm::engine::kernels {
const KernelSet* Avx2Kernels() { return nullptr; }
}  // namespace edgellm::engine::kernels

#endif
