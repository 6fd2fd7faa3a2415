// engine/legacy_quants.h — GGML's 32-weight block quantizations, byte for
// byte as GGUF stores them (fp16 numbers little-endian):
//
//   Q4_0 (18 bytes): d, qs[16];          w = d*(q - 8),   q in 0..15
//   Q4_1 (20 bytes): d, m, qs[16];       w = d*q + m,     q in 0..15
//   Q5_0 (22 bytes): d, qh[4], qs[16];   w = d*(q - 16),  q in 0..31
//   Q5_1 (24 bytes): d, m, qh[4], qs[16]; w = d*q + m,    q in 0..31
//   Q8_0 (34 bytes): d, int8 qs[32];     w = d*q
//
// In every 4- and 5-bit layout byte j of qs holds weight j in its low nibble
// and weight j+16 in its high one; bit j of the little-endian 32-bit qh is
// the fifth bit of weight j. The quantizers are ggml's reference ones, so a
// file written here is the file llama.cpp's quantize would write.
#ifndef EDGELLM_ENGINE_LEGACY_QUANTS_H_
#define EDGELLM_ENGINE_LEGACY_QUANTS_H_

#include <cstddef>
#include <cstdint>

namespace edgellm::engine {

inline constexpr size_t kLegacyBlock = 32;
inline constexpr size_t kQ8_0BlockBytes = 34;

void QuantizeQ4_0(const float* x, uint8_t* out, size_t blocks);
void DequantizeQ4_0(const uint8_t* in, float* y, size_t blocks);
void QuantizeQ4_1(const float* x, uint8_t* out, size_t blocks);
void DequantizeQ4_1(const uint8_t* in, float* y, size_t blocks);
void QuantizeQ5_0(const float* x, uint8_t* out, size_t blocks);
void DequantizeQ5_0(const uint8_t* in, float* y, size_t blocks);
void QuantizeQ5_1(const float* x, uint8_t* out, size_t blocks);
void DequantizeQ5_1(const uint8_t* in, float* y, size_t blocks);
void QuantizeQ8_0(const float* x, uint8_t* out, size_t blocks);
void DequantizeQ8_0(const uint8_t* in, float* y, size_t blocks);

// The weight of largest magnitude among x[0..n), with its sign: the symmetric
// quantizers map it to their most negative level.
float SignedMax(const float* x, size_t n);

// The fifth bits of a Q5 block, bit j for weight j.
inline uint32_t Q5HighBits(const uint8_t* qh) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
         static_cast<uint32_t>(qh[3]) << 24;
}

// The 5-bit value (0..31) of weight i (0..31) of a Q5 block: its nibble in
// qs and its bit of qh (Q5HighBits).
inline int Q5Value(const uint8_t* qs, uint32_t qh, int i) {
  const int nibble = i < 16 ? qs[i] & 0x0f : qs[i - 16] >> 4;
  return nibble | static_cast<int>(((qh >> i) & 1) << 4);
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LEGACY_QUANTS_H_
