// engine/iq4_quants.h — GGML's non-linear 4-bit quantizations, byte for byte
// as GGUF stores them. Each 4-bit index picks one of sixteen values spaced
// more densely near zero (kIq4Values), scaled:
//
//   IQ4_NL (18 bytes per 32 weights): fp16 d, qs[16]; w = d*kIq4Values[q].
//   IQ4_XS (136 bytes per 256): fp16 d, uint16 scales_h, scales_l[4],
//     qs[128]. Eight sub-blocks of 32, each with a 6-bit scale ls (low four
//     bits in the nibbles of scales_l, high two at bits 2j of scales_h);
//     w = d*(ls - 32)*kIq4Values[q].
//
// In both, byte j of a sub-block's 16 holds weight j in its low nibble and
// weight j+16 in its high one. Dequantization is ggml's; the quantizers pick
// each block's scale from its largest weight and the nearest value for each
// weight (no search).
#ifndef EDGELLM_ENGINE_IQ4_QUANTS_H_
#define EDGELLM_ENGINE_IQ4_QUANTS_H_

#include <cstddef>
#include <cstdint>

namespace edgellm::engine {

inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
inline constexpr size_t kIq4XsBytes = 136;

void QuantizeIq4Nl(const float* x, uint8_t* out, size_t blocks);
void DequantizeIq4Nl(const uint8_t* in, float* y, size_t blocks);
void QuantizeIq4Xs(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeIq4Xs(const uint8_t* in, float* y, size_t super_blocks);

// The 6-bit scale (0..63, 32 meaning zero) of IQ4_XS sub-block j.
inline int Iq4XsScale(const uint8_t* block, int j) {
  const int scales_h = block[2] | (block[3] << 8);
  return ((block[4 + j / 2] >> (4 * (j % 2))) & 0x0f) | (((scales_h >> (2 * j)) & 3) << 4);
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_IQ4_QUANTS_H_
