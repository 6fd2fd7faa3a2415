// engine/quantize_avx512.h — activations quantized to int8 on 512-bit
// registers: a block of 32 is two registers, so its largest magnitude, its
// rounding and its sum take half the instructions of the AVX2 quantizer, to
// the same bytes (every step is exact or rounds the same way: max, one
// division, round to nearest even, saturation to int8 once where AVX2
// saturates to int16 and then int8, integer sums, which are exact in floats).
// Included only by quant_kernels_avx512vnni.cpp.
#ifndef EDGELLM_ENGINE_QUANTIZE_AVX512_H_
#define EDGELLM_ENGINE_QUANTIZE_AVX512_H_

#include <immintrin.h>

#include <cstdint>

#include "daemon/engine/k_quants.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

inline __m512 InverseScale16(float d) { return _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f); }

// Sixteen floats times `inverse`, rounded to nearest (ties to even) into
// sixteen int8 at `out`; returns the sixteen as int32 lanes for their sum.
inline __m512i QuantizeSixteen(const float* x, __m512 inverse, int8_t* out) {
  const __m512 scaled = _mm512_mul_ps(_mm512_loadu_ps(x), inverse);
  const __m512i q = _mm512_cvt_roundps_epi32(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtsepi32_epi8(q));
  return q;
}

void QuantizeAvx512(const float* x, ActivationBlock* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += kBlock) {
    const __m512 amax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_abs_ps(_mm512_loadu_ps(x + 16)));
    const float d = _mm512_reduce_max_ps(amax) / 127.0f;
    const __m512 inverse = InverseScale16(d);
    const __m512i first = QuantizeSixteen(x, inverse, out[b].q);
    const __m512i second = QuantizeSixteen(x + 16, inverse, out[b].q + 16);
    // One reduction of both halves' lanes (vector adds wrap: a NaN's garbage sums are no overflow).
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(first, second));
    out[b].d = d;
    out[b].sum_d = d * static_cast<float>(sum);
    out[b].sum_q = sum;
  }
}

// Lane g of the result: the sum of the sixteen lanes of v[g] (an add tree
// that shares its shuffles: 45 instructions where sixteen reductions take
// eight each).
inline __m512i SumsOfSixteen(const __m512i v[16]) {
  // Within each 128-bit lane: [v2k: e0+e2, v2k+1: e0+e2, v2k: e1+e3, v2k+1: e1+e3].
  __m512i pairs[8];
  for (int k = 0; k < 8; ++k) {
    pairs[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]),
                                _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
  }
  // Within each 128-bit lane: that lane's sums of v4m .. v4m+3.
  __m512i quads[4];
  for (int m = 0; m < 4; ++m) {
    quads[m] = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[2 * m], pairs[2 * m + 1]),
                                _mm512_unpackhi_epi64(pairs[2 * m], pairs[2 * m + 1]));
  }
  // The four 128-bit lanes added: [quads[0] L0+L1, L2+L3, quads[1] L0+L1, L2+L3], then whole.
  const auto add_lanes = [](__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return add_lanes(add_lanes(quads[0], quads[1]), add_lanes(quads[2], quads[3]));
}

void QuantizeSuperAvx512(const float* x, SuperActivationBlock* out, int64_t count) {
  constexpr int kRegisters = static_cast<int>(kSuperBlock) / 16;
  static_assert(kRegisters == kGroupsPerSuperBlock, "a group of sixteen is one register");
  for (int64_t b = 0; b < count; ++b, x += kSuperBlock) {
    __m512 amax = _mm512_abs_ps(_mm512_loadu_ps(x));
    for (int g = 1; g < kRegisters; ++g) amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * g)));
    const float d = _mm512_reduce_max_ps(amax) / 127.0f;
    const __m512 inverse = InverseScale16(d);
    __m512i groups[kRegisters];
    for (int g = 0; g < kRegisters; ++g) groups[g] = QuantizeSixteen(x + 16 * g, inverse, out[b].q + 16 * g);
    // Each sum's low sixteen bits, as the int16 cast keeps them.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].group_sums), _mm512_cvtepi32_epi16(SumsOfSixteen(groups)));
    out[b].d = d;
  }
}

void AddAvx512Quantizers(KernelSet& set) {
  set.quantize = QuantizeAvx512;
  set.quantize_super = QuantizeSuperAvx512;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANTIZE_AVX512_H_
