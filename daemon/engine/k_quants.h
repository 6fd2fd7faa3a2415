// engine/k_quants.h — the GGML "K" quantizations that Q*_K_S/M files hold,
// in super-blocks of 256 weights, byte for byte as GGUF stores them:
//
//   Q2_K (84 bytes): scales[16], qs[64], fp16 d, fp16 dmin. Sixteen groups
//     of 16 weights; scales[g] holds a 4-bit scale (low) and min (high);
//     w = d*sc*q - dmin*m with q in 0..3.
//   Q3_K (110 bytes): hmask[32], qs[64], scales[12], fp16 d. Sixteen groups
//     of 16 with 6-bit scales (stored + 32); w = d*(sc - 32)*q with q in
//     -4..3: two low bits in qs, and 4 subtracted unless the hmask bit is set.
//   Q4_K (144 bytes): fp16 d, fp16 dmin, scales[12], qs[128]. Eight
//     sub-blocks of 32 weights, each with a 6-bit scale sc and min m packed
//     into `scales`; w = d*sc*q - dmin*m with q in 0..15. Bytes qs[32c..32c+31]
//     hold sub-block 2c in their low nibbles and 2c+1 in their high ones.
//   Q5_K (176 bytes): fp16 d, fp16 dmin, scales[12], qh[32], qs[128]. As
//     Q4_K with q in 0..31: bit j of qh[l] is the fifth bit of weight l of
//     sub-block j.
//   Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], fp16 d. Sixteen
//     groups of 16 weights, each with an 8-bit scale; w = d*scale*(q - 32)
//     with q in 0..63: four low bits in ql, two high bits in qh.
//
// In Q2_K and Q3_K, weight i = 128k + 32j + 16h + l (group 8k + 2j + h) has
// its two low bits at bit 2j of qs[32k + 16h + l], and Q3_K's high bit at
// bit 4k + j of hmask[16h + l].
//
// Dequantization is ggml's, operation for operation. The quantizers here
// pick scales from each group's range (no search), enough for synthetic
// models and tests; files from other tools decode the same.
#ifndef EDGELLM_ENGINE_K_QUANTS_H_
#define EDGELLM_ENGINE_K_QUANTS_H_

#include <cstddef>
#include <cstdint>

namespace edgellm::engine {

inline constexpr size_t kSuperBlock = 256;
inline constexpr size_t kQ2_KBytes = 84;
inline constexpr size_t kQ3_KBytes = 110;
inline constexpr size_t kQ4_KBytes = 144;
inline constexpr size_t kQ5_KBytes = 176;
inline constexpr size_t kQ6_KBytes = 210;

void QuantizeQ2_K(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeQ2_K(const uint8_t* in, float* y, size_t super_blocks);
void QuantizeQ3_K(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeQ3_K(const uint8_t* in, float* y, size_t super_blocks);
void QuantizeQ5_K(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeQ5_K(const uint8_t* in, float* y, size_t super_blocks);
void QuantizeQ4_K(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeQ4_K(const uint8_t* in, float* y, size_t super_blocks);
void QuantizeQ6_K(const float* x, uint8_t* out, size_t super_blocks);
void DequantizeQ6_K(const uint8_t* in, float* y, size_t super_blocks);

// Scale and min of Q4_K sub-block j (0..7) from the 12 packed bytes.
inline void Q4_KScaleMin(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// The sixteen 6-bit scales of a Q3_K super-block (0..63, 32 meaning zero).
inline void Q3_KScales(const uint8_t* packed, uint8_t scales[16]) {
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? packed[s % 8] & 0x0f : packed[s % 8] >> 4;
    const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
    scales[s] = static_cast<uint8_t>(low | (high << 4));
  }
}

// The 2-bit value of weight i (0..255) of a Q2_K or Q3_K super-block.
inline int Low2Bits(const uint8_t* qs, int i) {
  const int k = i / 128, j = (i % 128) / 32, hl = i % 32;
  return (qs[32 * k + hl] >> (2 * j)) & 3;
}

// The bit of hmask that says whether weight i of a Q3_K super-block keeps
// its two low bits as they are (set) or has 4 subtracted (clear).
inline int Q3_KHighBit(const uint8_t* hmask, int i) { return (hmask[i % 32] >> (4 * (i / 128) + (i % 128) / 32)) & 1; }

// The value (-4..3) of weight i of a Q3_K super-block.
inline int Q3_KValue(const uint8_t* hmask, const uint8_t* qs, int i) {
  return Low2Bits(qs, i) - (Q3_KHighBit(hmask, i) ? 0 : 4);
}

// The 6-bit value (0..63) of weight i (0..255) of a Q6_K super-block.
inline int Q6_KValue(const uint8_t* ql, const uint8_t* qh, int i) {
  const int half = i / 128, p = i % 128, quarter = p / 32, l = p % 32;
  const uint8_t low = ql[half * 64 + l + (quarter & 1) * 32];
  const int nibble = quarter >= 2 ? low >> 4 : low & 0x0f;
  return nibble | (((qh[half * 32 + l] >> (2 * quarter)) & 3) << 4);
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_K_QUANTS_H_
