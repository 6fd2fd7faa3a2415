// The portable kernels: the reference every SIMD version must match.
#include <cmath>
#include <cstring>

#include "daemon/engine/fp16.h"
#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/legacy_quants.h"
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

// Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; w = d*q + m.
float DotQ4_1(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 20) {
    const uint8_t* nibbles = w + 4;
    int32_t dot = 0;
    for (int64_t j = 0; j < 16; ++j) {
      dot += static_cast<int32_t>(nibbles[j] & 0x0f) * a[b].q[j];
      dot += static_cast<int32_t>(nibbles[j] >> 4) * a[b].q[j + 16];
    }
    total += LoadFp16(w) * a[b].d * static_cast<float>(dot) + LoadFp16(w + 2) * a[b].sum_d;
  }
  return total;
}

// The 32 five-bit values of a Q5 block, less `offset`, against an activation block.
int32_t DotQ5Values(const uint8_t* qh_bytes, const uint8_t* qs, const ActivationBlock& a, int32_t offset) {
  const uint32_t qh = Q5HighBits(qh_bytes);
  int32_t dot = 0;
  for (int i = 0; i < 32; ++i) dot += (Q5Value(qs, qh, i) - offset) * a.q[i];
  return dot;
}

// Q5_0: fp16 d, qh[4], qs[16]; w = d*(q - 16).
float DotQ5_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 22) {
    total += LoadFp16(w) * a[b].d * static_cast<float>(DotQ5Values(w + 2, w + 6, a[b], 16));
  }
  return total;
}

// Q5_1: fp16 d, fp16 m, qh[4], qs[16]; w = d*q + m.
float DotQ5_1(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 24) {
    total += LoadFp16(w) * a[b].d * static_cast<float>(DotQ5Values(w + 4, w + 8, a[b], 0)) +
             LoadFp16(w + 2) * a[b].sum_d;
  }
  return total;
}

// Q2_K: activation block j covers the groups 2j and 2j+1 of 16.
float DotQ2_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ2_KBytes, a += 8) {
    const float d = LoadFp16(w + 80), dmin = LoadFp16(w + 82);
    for (int j = 0; j < 8; ++j) {
      int32_t scaled = 0, mins = 0;
      for (int h = 0; h < 2; ++h) {
        const uint8_t sc = w[2 * j + h];
        int32_t dot = 0, sum = 0;
        for (int l = 0; l < 16; ++l) {
          const int8_t q = a[j].q[16 * h + l];
          dot += Low2Bits(w + 16, 32 * j + 16 * h + l) * q;
          sum += q;
        }
        scaled += (sc & 0x0f) * dot;
        mins += (sc >> 4) * sum;
      }
      total += a[j].d * (d * static_cast<float>(scaled) - dmin * static_cast<float>(mins));
    }
  }
  return total;
}

// Q3_K: groups of 16 with signed 6-bit scales.
float DotQ3_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ3_KBytes, a += 8) {
    const float d = LoadFp16(w + 108);
    uint8_t scales[16];
    Q3_KScales(w + 96, scales);
    for (int j = 0; j < 8; ++j) {
      int32_t dot = 0;
      for (int h = 0; h < 2; ++h) {
        int32_t group = 0;
        for (int l = 0; l < 16; ++l) {
          const int i = 32 * j + 16 * h + l;
          group += Q3_KValue(w, w + 32, i) * a[j].q[16 * h + l];
        }
        dot += (static_cast<int32_t>(scales[2 * j + h]) - 32) * group;
      }
      total += d * a[j].d * static_cast<float>(dot);
    }
  }
  return total;
}

// Q5_K: as Q4_K with the fifth bit of weight l of sub-block j at bit j of qh[l].
float DotQ5_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ5_KBytes, a += 8) {
    const float d = LoadFp16(w), dmin = LoadFp16(w + 2);
    const uint8_t* qh = w + 16;
    const uint8_t* qs = w + 48;
    for (int j = 0; j < 8; ++j) {
      uint8_t scale, min;
      Q4_KScaleMin(w + 4, j, &scale, &min);
      const uint8_t* bytes = qs + 32 * (j / 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        const int q = (j % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4) | (((qh[l] >> j) & 1) << 4);
        dot += q * a[j].q[l];
      }
      total += a[j].d * d * scale * static_cast<float>(dot) - dmin * min * a[j].sum_d;
    }
  }
  return total;
}

// 32 IQ4 indices (16 bytes) against an activation block.
int32_t DotIq4Values(const uint8_t* qs, const ActivationBlock& a) {
  int32_t dot = 0;
  for (int j = 0; j < 16; ++j) {
    dot += kIq4Values[qs[j] & 0x0f] * a.q[j] + kIq4Values[qs[j] >> 4] * a.q[j + 16];
  }
  return dot;
}

// IQ4_NL: fp16 d, qs[16]; w = d*kIq4Values[q].
float DotIq4Nl(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t b = 0; b < blocks; ++b, w += 18) {
    total += LoadFp16(w) * a[b].d * static_cast<float>(DotIq4Values(w + 2, a[b]));
  }
  return total;
}

// IQ4_XS: sub-block j of a super-block meets activation block j.
float DotIq4Xs(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float total = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kIq4XsBytes, a += 8) {
    const float d = LoadFp16(w);
    for (int j = 0; j < 8; ++j) {
      total += d * static_cast<float>(Iq4XsScale(w, j) - 32) * a[j].d *
               static_cast<float>(DotIq4Values(w + 8 + 16 * j, a[j]));
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
  static const KernelSet set = [] {
    KernelSet scalar;
    scalar.name = "scalar";
    scalar.quantize = Quantize;
    scalar.dot_f16 = DotF16;
    scalar.dot_f32 = DotF32;
    scalar.Set(GgmlType::kQ4_0, DotQ4_0, Dot4<DotQ4_0>);
    scalar.Set(GgmlType::kQ4_1, DotQ4_1);
    scalar.Set(GgmlType::kQ5_0, DotQ5_0);
    scalar.Set(GgmlType::kQ5_1, DotQ5_1);
    scalar.Set(GgmlType::kQ8_0, DotQ8_0, Dot4<DotQ8_0>);
    scalar.Set(GgmlType::kQ2_K, DotQ2_K);
    scalar.Set(GgmlType::kQ3_K, DotQ3_K);
    scalar.Set(GgmlType::kQ4_K, DotQ4_K);
    scalar.Set(GgmlType::kQ5_K, DotQ5_K);
    scalar.Set(GgmlType::kQ6_K, DotQ6_K);
    scalar.Set(GgmlType::kIQ4_NL, DotIq4Nl);
    scalar.Set(GgmlType::kIQ4_XS, DotIq4Xs);
    return scalar;
  }();
  return set;
}

}  // namespace edgellm::engine::kernels
