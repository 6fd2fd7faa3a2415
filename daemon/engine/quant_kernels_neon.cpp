// NEON kernels for aarch64 (Jetson and other Arm boards). Plain ARMv8.0
// Advanced SIMD — no dot-product extension — so every aarch64 CPU runs them.
// Q8_0, Q4_0, Q5_0, Q4_K, Q6_K (what Q4_0 and Q4_K_M files hold), F16 and F32
// dots are vectorised; quantizing activations and the other types stay the
// scalar ones (the quantization must match the scalar reference bit for bit
// anyway).
#include "daemon/engine/quant_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

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

// Q5_0: fp16 d, qh[4], qs[16]; weight i is its nibble with bit i of qh as bit 4, less 16.
float DotQ5_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0f), fifth_bit = vdupq_n_u8(0x10);
  const int8x16_t sixteen = vdupq_n_s8(16);
  // Byte i of a spread qh byte pair tests bit i % 8.
  const uint8x16_t bit_of_byte = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 22) {
    const uint8x16_t packed = vld1q_u8(w + 6);
    const uint8x16_t high_first = vtstq_u8(vcombine_u8(vdup_n_u8(w[2]), vdup_n_u8(w[3])), bit_of_byte);
    const uint8x16_t high_second = vtstq_u8(vcombine_u8(vdup_n_u8(w[4]), vdup_n_u8(w[5])), bit_of_byte);
    const int8x16_t first = vsubq_s8(
        vreinterpretq_s8_u8(vorrq_u8(vandq_u8(packed, low_nibbles), vandq_u8(high_first, fifth_bit))), sixteen);
    const int8x16_t second = vsubq_s8(
        vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(packed, 4), vandq_u8(high_second, fifth_bit))), sixteen);
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
    neon.Set(GgmlType::kQ5_0, DotQ5_0, Dot4<ActivationBlock, DotQ5_0>);
    neon.Set(GgmlType::kQ4_K, DotQ4_K, Dot4<SuperActivationBlock, DotQ4_K>);
    neon.Set(GgmlType::kQ6_K, DotQ6_K, Dot4<SuperActivationBlock, DotQ6_K>);
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
