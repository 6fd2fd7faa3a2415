// engine/quant_kernels.h — dot products of one GGUF weight row with one row
// of activations, per instruction set, chosen once at run time.
//
// Quantized weights (every type with a dot in the scalar set: the 32-weight
// blocks of the legacy and IQ4_NL types, the 32-weight sub-blocks of the K
// types and IQ4_XS) meet activations quantized on the fly to 8 bits per
// 32-value block (ActivationBlock), so the inner loop is integer
// multiply-adds; F16 and F32 weights meet float activations. Every kernel has
// a portable scalar version, the reference the others are tested against;
// the AVX2 (with FMA and F16C) versions, and the same built with VNNI, are
// selected when the CPU has them,
// the NEON ones on aarch64, each set falling back to the scalar kernel of a
// type it has none for. Engine-internal: quant_matmul.h is the interface the
// model uses.
#ifndef EDGELLM_ENGINE_QUANT_KERNELS_H_
#define EDGELLM_ENGINE_QUANT_KERNELS_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "daemon/engine/quant_types.h"

namespace edgellm::engine::kernels {

inline constexpr int64_t kBlock = 32;  // values per quantization block, for every type here

// 32 activations quantized to int8: x ≈ d * q. `sum_d` is d times the sum of
// q (the block's sum in real units), which lets the Q4_0 and Q4_K kernels
// apply their weight offsets once per block instead of once per weight.
struct ActivationBlock {
  float d;
  float sum_d;
  int8_t q[kBlock];
};

// Quantizes `blocks` * 32 floats (round to nearest, scale = max |x| / 127).
using QuantizeFn = void (*)(const float* x, ActivationBlock* out, int64_t blocks);
// Dot of a quantized weight row of `blocks` 32-value blocks (for K types, a
// multiple of 8: whole super-blocks) with quantized activations.
using DotQuantFn = float (*)(const uint8_t* weights, const ActivationBlock* a, int64_t blocks);
// Dots of one quantized weight row with 4 activation rows at once (each
// `stride` blocks after the last): the weight blocks are loaded and unpacked
// once for the four. out[i] equals the single-row dot with row i exactly.
using DotQuant4Fn = void (*)(const uint8_t* weights, const ActivationBlock* a, int64_t stride, int64_t blocks,
                             float out[4]);
// Dot of an F16 or F32 weight row of n values (n % 32 == 0) with float activations.
using DotFloatFn = float (*)(const uint8_t* weights, const float* x, int64_t n);

// GGML type ids are below this.
inline constexpr size_t kTypeSlots = 40;

struct KernelSet {
  std::string_view name;  // "scalar", "avx2", "neon"
  QuantizeFn quantize = nullptr;
  DotFloatFn dot_f16 = nullptr;
  DotFloatFn dot_f32 = nullptr;
  // By GGML type id, the dot of that type's weights with quantized
  // activations, and the four-row one where there is one; nullptr: none.
  std::array<DotQuantFn, kTypeSlots> dot{};
  std::array<DotQuant4Fn, kTypeSlots> dot4{};
  // True where this set's four-row kernels multiply a prefill chunk faster
  // than dequantizing the weight for BLAS does (BM_PrefillMatMul): then the
  // kernels take every row count for the types that have one.
  bool prefill_in_kernels = false;

  DotQuantFn Dot(GgmlType type) const {
    return static_cast<size_t>(type) < kTypeSlots ? dot[static_cast<size_t>(type)] : nullptr;
  }
  DotQuant4Fn Dot4(GgmlType type) const {
    return static_cast<size_t>(type) < kTypeSlots ? dot4[static_cast<size_t>(type)] : nullptr;
  }
  void Set(GgmlType type, DotQuantFn one, DotQuant4Fn four = nullptr) {
    dot[static_cast<size_t>(type)] = one;
    dot4[static_cast<size_t>(type)] = four;
  }
};

const KernelSet& ScalarKernels();
// nullptr when this build or this CPU lacks the instructions.
const KernelSet* Avx2Kernels();
const KernelSet* AvxVnniKernels();     // AVX2 with AVX-VNNI
const KernelSet* Avx512VnniKernels();  // AVX2 with AVX512-VNNI and VL
const KernelSet* NeonKernels();  // every aarch64 CPU has NEON
// The fastest set this CPU runs.
const KernelSet& BestKernels();

}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_KERNELS_H_
