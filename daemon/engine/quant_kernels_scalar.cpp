// The portable kernels: the reference every SIMD version must match.
#include <cmath>
#include <cstring>

#include "daemon/engine/fp16.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

void Quantize(const float* x, ActivationBlock* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += kBlock) {
    float amax = 0.0f;
    for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < kBlock; ++i) {
      const int32_t q = static_cast<int32_t>(std::nearbyint(x[i] * inverse));
      out[b].q[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum_d = d * static_cast<float>(sum);
  }
}

// Q8_0: fp16 d, int8 q[32].
float DotQ8_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(w + 2);
    int32_t dot = 0;
    for (int64_t i = 0; i < kBlock; ++i) dot += static_cast<int32_t>(q[i]) * a[b].q[i];
    total += LoadFp16(w) * a[b].d * static_cast<float>(dot);
  }
  return total;
}

// Q4_0: fp16 d, 16 bytes; byte j holds weight j (low nibble) and j+16 (high); w = d * (nibble - 8).
float DotQ4_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 18) {
    const uint8_t* nibbles = w + 2;
    int32_t dot = 0;
    for (int64_t j = 0; j < 16; ++j) {
      dot += (static_cast<int32_t>(nibbles[j] & 0x0f) - 8) * a[b].q[j];
      dot += (static_cast<int32_t>(nibbles[j] >> 4) - 8) * a[b].q[j + 16];
    }
    total += LoadFp16(w) * a[b].d * static_cast<float>(dot);
  }
  return total;
}

// Q4_K: sub-block j of a super-block meets activation block j.
float DotQ4_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ4_KBytes, a += 8) {
    const float d = LoadFp16(w), dmin = LoadFp16(w + 2);
    const uint8_t* qs = w + 16;
    for (int j = 0; j < 8; ++j) {
      uint8_t scale, min;
      Q4_KScaleMin(w + 4, j, &scale, &min);
      const uint8_t* bytes = qs + 32 * (j / 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) dot += (j % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4) * a[j].q[l];
      total += a[j].d * d * scale * static_cast<float>(dot) - dmin * min * a[j].sum_d;
    }
  }
  return total;
}

// Q6_K: activation block j covers the scale groups 2j and 2j+1.
float DotQ6_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ6_KBytes, a += 8) {
    const float d = LoadFp16(w + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    for (int j = 0; j < 8; ++j) {
      int32_t dot = 0;
      for (int half = 0; half < 2; ++half) {
        int32_t group = 0;
        for (int l = 0; l < 16; ++l) {
          const int i = 32 * j + 16 * half + l;
          group += (Q6_KValue(w, w + 128, i) - 32) * a[j].q[16 * half + l];
        }
        dot += scales[2 * j + half] * group;
      }
      total += d * a[j].d * static_cast<float>(dot);
    }
  }
  return total;
}

template <DotQuantFn Dot>
void Dot4(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  for (int i = 0; i < 4; ++i) out[i] = Dot(w, a + i * stride, blocks);
}

float DotF16(const uint8_t* w, const float* x, int64_t n) {
  float total = 0.0f;
  for (int64_t i = 0; i < n; ++i) total += LoadFp16(w + 2 * i) * x[i];
  return total;
}

float DotF32(const uint8_t* w, const float* x, int64_t n) {
  float total = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, w + 4 * i, sizeof(v));
    total += v * x[i];
  }
  return total;
}

}  // namespace

const KernelSet& ScalarKernels() {
  static const KernelSet set{"scalar", Quantize, DotQ8_0, DotQ4_0, Dot4<DotQ8_0>, Dot4<DotQ4_0>,
                             DotQ4_K,  DotQ6_K,  DotF16,  DotF32};
  return set;
}

}  // namespace edgellm::engine::kernels
