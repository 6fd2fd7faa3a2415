// NEON kernels for aarch64 (Jetson and other Arm boards). Plain ARMv8.0
// Advanced SIMD — no dot-product extension — so every aarch64 CPU runs them.
// The dots of every quantized type, F16 and F32 are vectorised; quantizing
// activations stays the scalar one (it must match the scalar reference bit
// for bit anyway). Each kernel unpacks a block to signed bytes and meets the
// activations in exact int32 sums, so it equals the scalar one exactly.
#include "daemon/engine/quant_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"

namespace edgellm::engine::kernels {
namespace {

inline float HalfToFloat(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// Σ w[i] * a[i] over 32 signed bytes, exact in int32.
inline int32_t DotBytes(int8x16_t w0, int8x16_t w1, const int8_t* a) {
  const int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
  int32x4_t sum = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
  sum = vpadalq_s16(sum, vmull_s8(vget_high_s8(w0), vget_high_s8(a0)));
  sum = vpadalq_s16(sum, vmull_s8(vget_low_s8(w1), vget_low_s8(a1)));
  sum = vpadalq_s16(sum, vmull_s8(vget_high_s8(w1), vget_high_s8(a1)));
  return vaddvq_s32(sum);
}

float DotQ8_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(w + 2);
    total += HalfToFloat(w) * a[b].d * static_cast<float>(DotBytes(vld1q_s8(q), vld1q_s8(q + 16), a[b].q));
  }
  return total;
}

// Q4_0: byte j holds weight j (low nibble) and j + 16 (high); w = nibble - 8.
float DotQ4_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 18) {
    const uint8x16_t packed = vld1q_u8(w + 2);
    const int8x16_t first = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, low_nibbles)), eight);
    const int8x16_t second = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
    total += HalfToFloat(w) * a[b].d * static_cast<float>(DotBytes(first, second, a[b].q));
  }
  return total;
}

// Σ w[i] * a[i] over 16 signed bytes, exact in int32.
inline int32_t DotBytes16(int8x16_t w, const int8_t* a) {
  const int8x16_t a0 = vld1q_s8(a);
  const int32x4_t sum = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a0)));
  return vaddvq_s32(vpadalq_s16(sum, vmull_s8(vget_high_s8(w), vget_high_s8(a0))));
}

// Q4_1: fp16 d, fp16 m, 16 bytes of nibbles as Q4_0's; w = d*q + m, the m
// term through the activations' sum.
float DotQ4_1(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f);
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 20) {
    const uint8x16_t packed = vld1q_u8(w + 4);
    const int8x16_t first = vreinterpretq_s8_u8(vandq_u8(packed, low_nibbles));
    const int8x16_t second = vreinterpretq_s8_u8(vshrq_n_u8(packed, 4));
    total += HalfToFloat(w) * a[b].d * static_cast<float>(DotBytes(first, second, a[b].q)) +
             HalfToFloat(w + 2) * a[b].sum_d;
  }
  return total;
}

// The 32 five-bit values (0..31) of a Q5 block: weight i is its nibble with
// bit i of qh as bit 4; weights 0..15 in `first`, 16..31 in `second`.
inline void Q5Values(const uint8_t* qh, const uint8_t* qs, uint8x16_t* first, uint8x16_t* second) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f), fifth_bit = vdupq_n_u8(0x10);
  // Byte i of a spread qh byte pair tests bit i % 8.
  const uint8x16_t bit_of_byte = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t packed = vld1q_u8(qs);
  const uint8x16_t high_first = vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), bit_of_byte);
  const uint8x16_t high_second = vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), bit_of_byte);
  *first = vorrq_u8(vandq_u8(packed, low_nibbles), vandq_u8(high_first, fifth_bit));
  *second = vorrq_u8(vshrq_n_u8(packed, 4), vandq_u8(high_second, fifth_bit));
}

// Q5_0: fp16 d, qh[4], qs[16]; w = d*(q - 16).
float DotQ5_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const int8x16_t sixteen = vdupq_n_s8(16);
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 22) {
    uint8x16_t first, second;
    Q5Values(w + 2, w + 6, &first, &second);
    const int32_t dot = DotBytes(vsubq_s8(vreinterpretq_s8_u8(first), sixteen),
                                 vsubq_s8(vreinterpretq_s8_u8(second), sixteen), a[b].q);
    total += HalfToFloat(w) * a[b].d * static_cast<float>(dot);
  }
  return total;
}

// Q5_1: fp16 d, fp16 m, qh[4], qs[16]; w = d*q + m.
float DotQ5_1(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 24) {
    uint8x16_t first, second;
    Q5Values(w + 4, w + 8, &first, &second);
    const int32_t dot = DotBytes(vreinterpretq_s8_u8(first), vreinterpretq_s8_u8(second), a[b].q);
    total += HalfToFloat(w) * a[b].d * static_cast<float>(dot) + HalfToFloat(w + 2) * a[b].sum_d;
  }
  return total;
}

// 32 IQ4 indices (16 bytes: weight j in the low nibble of byte j, j + 16 in
// the high) looked up in the non-linear table.
inline void Iq4Values(const uint8_t* qs, int8x16_t* first, int8x16_t* second) {
  const int8x16_t table = vld1q_s8(kIq4Values);
  const uint8x16_t packed = vld1q_u8(qs);
  *first = vqtbl1q_s8(table, vandq_u8(packed, vdupq_n_u8(0x0f)));
  *second = vqtbl1q_s8(table, vshrq_n_u8(packed, 4));
}

// IQ4_NL: fp16 d, qs[16]; w = d*kIq4Values[q].
float DotIq4Nl(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 18) {
    int8x16_t first, second;
    Iq4Values(w + 2, &first, &second);
    total += HalfToFloat(w) * a[b].d * static_cast<float>(DotBytes(first, second, a[b].q));
  }
  return total;
}

// Q4_K: sub-blocks 2c (low nibbles of 32 bytes of qs) and 2c+1 (high
// nibbles); w = d*scale*q - dmin*min, the mins through the group sums.
float DotQ4_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f);
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ4_KBytes, ++a) {
    int32_t scaled = 0, mins = 0;
    for (int c = 0; c < 4; ++c) {
      const uint8x16_t bytes0 = vld1q_u8(w + 16 + 32 * c), bytes1 = vld1q_u8(w + 32 + 32 * c);
      const int8x16_t q[2][2] = {
          {vreinterpretq_s8_u8(vandq_u8(bytes0, low_nibbles)), vreinterpretq_s8_u8(vandq_u8(bytes1, low_nibbles))},
          {vreinterpretq_s8_u8(vshrq_n_u8(bytes0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(bytes1, 4))}};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * c + h;
        uint8_t scale, min;
        Q4_KScaleMin(w + 4, j, &scale, &min);
        scaled += scale * DotBytes(q[h][0], q[h][1], a->q + 32 * j);
        mins += min * (a->group_sums[2 * j] + a->group_sums[2 * j + 1]);
      }
    }
    total += a->d * (HalfToFloat(w) * static_cast<float>(scaled) - HalfToFloat(w + 2) * static_cast<float>(mins));
  }
  return total;
}

// Q6_K: quarter k of half n (32 weights: groups 8n + 2k and 8n + 2k + 1, each
// with its own scale) has four low bits in ql and two high bits in qh.
float DotQ6_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f), two_bits = vdupq_n_u8(3);
  const int8x16_t thirty_two = vdupq_n_s8(32);
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ6_KBytes, ++a) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    int32_t dot = 0;
    for (int n = 0; n < 2; ++n) {
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * n + k;
        for (int half = 0; half < 2; ++half) {
          const uint8x16_t bytes = vld1q_u8(w + 64 * n + 32 * (k % 2) + 16 * half);
          const uint8x16_t low = k < 2 ? vandq_u8(bytes, low_nibbles) : vshrq_n_u8(bytes, 4);
          const uint8x16_t qh = vld1q_u8(w + 128 + 32 * n + 16 * half);
          const uint8x16_t high = vandq_u8(vshlq_u8(qh, vdupq_n_s8(static_cast<int8_t>(-2 * k))), two_bits);
          const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, vshlq_n_u8(high, 4))), thirty_two);
          dot += scales[2 * j + half] * DotBytes16(q, a->q + 32 * j + 16 * half);
        }
      }
    }
    total += HalfToFloat(w + 208) * a->d * static_cast<float>(dot);
  }
  return total;
}

// Q2_K: the 2-bit values of weights 128k + 32j + l sit at bits 2j of
// qs[32k + l]; group g has a 4-bit scale (low nibble of byte g) and min
// (high), in units of d and dmin.
float DotQ2_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  const uint8x16_t two_bits = vdupq_n_u8(3);
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ2_KBytes, ++a) {
    int32_t scaled = 0, mins = 0;
    for (int k = 0; k < 2; ++k) {
      const uint8x16_t bytes[2] = {vld1q_u8(w + 16 + 32 * k), vld1q_u8(w + 32 + 32 * k)};
      for (int j = 0; j < 4; ++j) {
        const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-2 * j));
        for (int half = 0; half < 2; ++half) {
          const int g = 8 * k + 2 * j + half;
          const int8x16_t q = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(bytes[half], shift), two_bits));
          scaled += (w[g] & 0x0f) * DotBytes16(q, a->q + 16 * g);
          mins += (w[g] >> 4) * a->group_sums[g];
        }
      }
    }
    total += a->d * (HalfToFloat(w + 80) * static_cast<float>(scaled) - HalfToFloat(w + 82) * static_cast<float>(mins));
  }
  return total;
}

// Q3_K: Q2_K's 2-bit layout, less 4 where bit 4k + j of hmask[l] is clear;
// groups of 16 with signed 6-bit scales (stored plus 32).
float DotQ3_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  const uint8x16_t two_bits = vdupq_n_u8(3), four = vdupq_n_u8(4);
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ3_KBytes, ++a) {
    uint8_t scales[16];
    Q3_KScales(w + 96, scales);
    const uint8x16_t hmask[2] = {vld1q_u8(w), vld1q_u8(w + 16)};
    int32_t dot = 0;
    for (int k = 0; k < 2; ++k) {
      const uint8x16_t bytes[2] = {vld1q_u8(w + 32 + 32 * k), vld1q_u8(w + 48 + 32 * k)};
      for (int j = 0; j < 4; ++j) {
        const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-2 * j));
        const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1 << (4 * k + j)));
        for (int half = 0; half < 2; ++half) {
          const int g = 8 * k + 2 * j + half;
          const uint8x16_t low = vandq_u8(vshlq_u8(bytes[half], shift), two_bits);
          const uint8x16_t kept = vtstq_u8(hmask[half], bit);
          const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(vbicq_u8(four, kept)));
          dot += (static_cast<int32_t>(scales[g]) - 32) * DotBytes16(q, a->q + 16 * g);
        }
      }
    }
    total += HalfToFloat(w + 108) * a->d * static_cast<float>(dot);
  }
  return total;
}

// Q5_K: Q4_K's nibbles with the fifth bit of weight l of sub-block j at bit j of qh[l].
float DotQ5_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f), fifth_bit = vdupq_n_u8(0x10);
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ5_KBytes, ++a) {
    const uint8x16_t qh[2] = {vld1q_u8(w + 16), vld1q_u8(w + 32)};
    int32_t scaled = 0, mins = 0;
    for (int c = 0; c < 4; ++c) {
      const uint8x16_t bytes[2] = {vld1q_u8(w + 48 + 32 * c), vld1q_u8(w + 64 + 32 * c)};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * c + h;
        const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1 << j));
        int8x16_t q[2];
        for (int half = 0; half < 2; ++half) {
          const uint8x16_t nibble = h == 0 ? vandq_u8(bytes[half], low_nibbles) : vshrq_n_u8(bytes[half], 4);
          q[half] = vreinterpretq_s8_u8(vorrq_u8(nibble, vandq_u8(vtstq_u8(qh[half], bit), fifth_bit)));
        }
        uint8_t scale, min;
        Q4_KScaleMin(w + 4, j, &scale, &min);
        scaled += scale * DotBytes(q[0], q[1], a->q + 32 * j);
        mins += min * (a->group_sums[2 * j] + a->group_sums[2 * j + 1]);
      }
    }
    total += a->d * (HalfToFloat(w) * static_cast<float>(scaled) - HalfToFloat(w + 2) * static_cast<float>(mins));
  }
  return total;
}

// IQ4_XS: eight sub-blocks of IQ4 indices, each with its own 6-bit scale (less 32).
float DotIq4Xs(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kIq4XsBytes, ++a) {
    int32_t dot = 0;
    for (int j = 0; j < 8; ++j) {
      int8x16_t first, second;
      Iq4Values(w + 8 + 16 * j, &first, &second);
      dot += (Iq4XsScale(w, j) - 32) * DotBytes(first, second, a->q + 32 * j);
    }
    total += HalfToFloat(w) * a->d * static_cast<float>(dot);
  }
  return total;
}

// Four rows as four one-row dots: the same result as one row by construction.
template <typename Activation, float (*Dot)(const uint8_t*, const Activation*, int64_t)>
void Dot4(const uint8_t* w, const Activation* a, int64_t stride, int64_t blocks, float out[4]) {
  for (int i = 0; i < 4; ++i) out[i] = Dot(w, a + i * stride, blocks);
}

float DotF16(const uint8_t* w, const float* x, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const uint16x8_t halves = vld1q_u16(reinterpret_cast<const uint16_t*>(w + 2 * i));
    acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(halves))), vld1q_f32(x + i));
    acc1 = vfmaq_f32(acc1, vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(halves))), vld1q_f32(x + i + 4));
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

float DotF32(const uint8_t* w, const float* x, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n; i += 8) {
    float32x4_t w0, w1;
    std::memcpy(&w0, w + 4 * i, sizeof(w0));
    std::memcpy(&w1, w + 4 * i + 16, sizeof(w1));
    acc0 = vfmaq_f32(acc0, w0, vld1q_f32(x + i));
    acc1 = vfmaq_f32(acc1, w1, vld1q_f32(x + i + 4));
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

}  // namespace

const KernelSet* NeonKernels() {
  static const KernelSet set = [] {
    KernelSet neon = ScalarKernels();
    neon.name = "neon";
    neon.Set(GgmlType::kQ8_0, DotQ8_0, Dot4<ActivationBlock, DotQ8_0>);
    neon.Set(GgmlType::kQ4_0, DotQ4_0, Dot4<ActivationBlock, DotQ4_0>);
    neon.Set(GgmlType::kQ4_1, DotQ4_1, Dot4<ActivationBlock, DotQ4_1>);
    neon.Set(GgmlType::kQ5_0, DotQ5_0, Dot4<ActivationBlock, DotQ5_0>);
    neon.Set(GgmlType::kQ5_1, DotQ5_1, Dot4<ActivationBlock, DotQ5_1>);
    neon.Set(GgmlType::kIQ4_NL, DotIq4Nl, Dot4<ActivationBlock, DotIq4Nl>);
    neon.Set(GgmlType::kQ2_K, DotQ2_K, Dot4<SuperActivationBlock, DotQ2_K>);
    neon.Set(GgmlType::kQ3_K, DotQ3_K, Dot4<SuperActivationBlock, DotQ3_K>);
    neon.Set(GgmlType::kQ4_K, DotQ4_K, Dot4<SuperActivationBlock, DotQ4_K>);
    neon.Set(GgmlType::kQ5_K, DotQ5_K, Dot4<SuperActivationBlock, DotQ5_K>);
    neon.Set(GgmlType::kQ6_K, DotQ6_K, Dot4<SuperActivationBlock, DotQ6_K>);
    neon.Set(GgmlType::kIQ4_XS, DotIq4Xs, Dot4<SuperActivationBlock, DotIq4Xs>);
    neon.dot_f16 = DotF16;
    neon.dot_f32 = DotF32;
    return neon;
  }();
  return &set;
}

}  // namespace edgellm::engine::kernels

#else

namespace edgellm::engine::kernels {
const KernelSet* NeonKernels() { return nullptr; }
}  // namespace edgellm::engine::kernels

#endif
