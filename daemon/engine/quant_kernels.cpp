#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {

const KernelSet& BestKernels() {
  static const KernelSet& best = [] () -> const KernelSet& {
    if (const KernelSet* avx2 = Avx2Kernels()) return *avx2;
    if (const KernelSet* neon = NeonKernels()) return *neon;
    return ScalarKernels();
  }();
  return best;
}

}  // namespace edgellm::engine::kernels
