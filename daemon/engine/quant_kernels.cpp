#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {

const KernelSet& BestKernels() {
  static const KernelSet& best = [] () -> const KernelSet& {
    for (const KernelSet* x86 : {Avx512VnniKernels(), AvxVnniKernels(), Avx2Kernels()}) {
      if (x86 != nullptr) return *x86;
    }
    if (const KernelSet* neon = NeonKernels()) return *neon;
    return ScalarKernels();
  }();
  return best;
}

}  // namespace edgellm::engine::kernels
