// engine/k_quants.h — the GGML "K" quantizations that Q4_K_M files hold, in
// super-blocks of 256 weights, byte for byte as GGUF stores them:
//
//   Q4_K (144 bytes): fp16 d, fp16 dmin, scales[12], qs[128]. Eight
//     sub-blocks of 32 weights, each with a 6-bit scale sc and min m packed
//     into `scales`; w = d*sc*q - dmin*m with q in 0..15. Bytes qs[32c..32c+31]
//     hold sub-block 2c in their low nibbles and 2c+1 in their high ones.
//   Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], fp16 d. Sixteen
//     groups of 16 weights, each with an 8-bit scale; w = d*scale*(q - 32)
//     with q in 0..63: four low bits in ql, two high bits in qh.
//
// The quantizers here pick scales from each sub-block's range (no search),
// enough for synthetic models and tests; files from other tools decode the same.
#ifndef EDGELLM_ENGINE_K_QUANTS_H_
#define EDGELLM_ENGINE_K_QUANTS_H_

#include <cstddef>
#include <cstdint>

namespace edgellm::engine {

inline constexpr size_t kSuperBlock = 256;
inline constexpr size_t kQ4_KBytes = 144;
inline constexpr size_t kQ6_KBytes = 210;

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

// The 6-bit value (0..63) of weight i (0..255) of a Q6_K super-block.
inline int Q6_KValue(const uint8_t* ql, const uint8_t* qh, int i) {
  const int half = i / 128, p = i % 128, quarter = p / 32, l = p % 32;
  const uint8_t low = ql[half * 64 + l + (quarter & 1) * 32];
  const int nibble = quarter >= 2 ? low >> 4 : low & 0x0f;
  return nibble | (((qh[half * 32 + l] >> (2 * quarter)) & 3) << 4);
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_K_QUANTS_H_
