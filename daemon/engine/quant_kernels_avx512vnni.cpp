// The x86 kernels with AVX512-VNNI's byte dot (on 256-bit registers) besides
// AVX2 (Ice Lake, Sapphire Rapids, Zen 4 and later), and the prefill tiles on
// 512-bit registers, sixteen weight rows side by side for Q4_0, Q5_0
// and Q8_0, and for Q4_K and Q6_K matrices packed at load; decode
// attention's float kernels, the KV cache's widening and the activations'
// quantizers on 512-bit registers.
#include "daemon/engine/quant_kernels.h"

#if defined(__x86_64__)
#define EDGELLM_X86_BYTE_DOT EDGELLM_X86_AVX512VNNI
#include "daemon/engine/quant_kernels_x86.h"
#include "daemon/engine/quant_tiles_avx512.h"
#include "daemon/engine/quant_interleaved_avx512.h"
#include "daemon/engine/quant_packed_k_avx512.h"
#include "daemon/engine/attention_kernels_avx512.h"
#include "daemon/engine/quantize_avx512.h"

namespace edgellm::engine::kernels {

const KernelSet* Avx512VnniKernels() {
  static const bool supported = [] {
    return CpuRunsAvx2() && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  static const KernelSet set = [] {
    KernelSet avx512 = X86Kernels("avx512vnni");
    AddAvx512Tiles(avx512);
    AddAvx512Interleaved(avx512);
    AddAvx512PackedSuperBlocks(avx512);
    AddAvx512AttentionKernels(avx512);
    AddAvx512Quantizers(avx512);
    return avx512;
  }();
  return supported ? &set : nullptr;
}

}  // namespace edgellm::engine::kernels

#else

namespace edgellm::engine::kernels {
const KernelSet* Avx512VnniKernels() { return nullptr; }
}  // namespace edgellm::engine::kernels

#endif
