// The portable kernels: the reference every SIMD version must match.
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/legacy_quants.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

// v to the nearest integer (ties to even); a NaN activation (a broken model)
// becomes 0 rather than an undefined conversion.
int32_t Round(float v) { return std::isfinite(v) ? static_cast<int32_t>(std::nearbyint(v)) : 0; }

// The scale that maps the largest magnitude of x[0..n) to 127.
float BlockScale(const float* x, size_t n) {
  float amax = 0.0f;
  for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax / 127.0f;
}

void Quantize(const float* x, ActivationBlock* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += kBlock) {
    const float d = BlockScale(x, kBlock);
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < kBlock; ++i) {
      const int32_t q = Round(x[i] * inverse);
      out[b].q[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum_d = d * static_cast<float>(sum);
    out[b].sum_q = sum;
  }
}

void QuantizeSuper(const float* x, SuperActivationBlock* out, int64_t count) {
  for (int64_t b = 0; b < count; ++b, x += kSuperBlock) {
    const float d = BlockScale(x, kSuperBlock);
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    for (int g = 0; g < kGroupsPerSuperBlock; ++g) {
      int32_t sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int32_t q = Round(x[i] * inverse);
        out[b].q[i] = static_cast<int8_t>(q);
        sum += q;
      }
      out[b].group_sums[g] = static_cast<int16_t>(sum);
    }
    out[b].d = d;
  }
}

// Σ q·a over the 16 weights of group g of a super-block, for a type whose
// weight i is value(i).
template <typename Value>
int32_t GroupDot(const SuperActivationBlock& a, int g, Value value) {
  int32_t dot = 0;
  for (int i = 16 * g; i < 16 * g + 16; ++i) dot += value(i) * a.q[i];
  return dot;
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

// Q4_K: weight i of a super-block is d·scale·q - dmin·min with the scale
// and min of its 32-weight sub-block; the mins meet the group sums.
float DotQ4_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ4_KBytes, ++a) {
    int32_t scaled = 0, mins = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t scale, min;
      Q4_KScaleMin(w + 4, j, &scale, &min);
      const uint8_t* bytes = w + 16 + 32 * (j / 2);
      const auto value = [&](int i) { return j % 2 == 0 ? bytes[i % 32] & 0x0f : bytes[i % 32] >> 4; };
      scaled += scale * (GroupDot(*a, 2 * j, value) + GroupDot(*a, 2 * j + 1, value));
      mins += min * (a->group_sums[2 * j] + a->group_sums[2 * j + 1]);
    }
    total += a->d * (LoadFp16(w) * static_cast<float>(scaled) - LoadFp16(w + 2) * static_cast<float>(mins));
  }
  return total;
}

// Q6_K: sixteen groups of 16 weights, each with a signed 8-bit scale; values less 32.
float DotQ6_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ6_KBytes, ++a) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    int32_t dot = 0;
    for (int g = 0; g < 16; ++g) {
      dot += scales[g] * GroupDot(*a, g, [&](int i) { return Q6_KValue(w, w + 128, i) - 32; });
    }
    total += LoadFp16(w + 208) * a->d * static_cast<float>(dot);
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

// Q2_K: two bits per weight; each group of 16 has a 4-bit scale (low nibble)
// and a 4-bit min (high), in units of d and dmin.
float DotQ2_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ2_KBytes, ++a) {
    int32_t scaled = 0, mins = 0;
    for (int g = 0; g < 16; ++g) {
      scaled += (w[g] & 0x0f) * GroupDot(*a, g, [&](int i) { return Low2Bits(w + 16, i); });
      mins += (w[g] >> 4) * a->group_sums[g];
    }
    total += a->d * (LoadFp16(w + 80) * static_cast<float>(scaled) - LoadFp16(w + 82) * static_cast<float>(mins));
  }
  return total;
}

// Q3_K: groups of 16 with signed 6-bit scales (stored plus 32).
float DotQ3_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ3_KBytes, ++a) {
    uint8_t scales[16];
    Q3_KScales(w + 96, scales);
    int32_t dot = 0;
    for (int g = 0; g < 16; ++g) {
      dot += (static_cast<int32_t>(scales[g]) - 32) * GroupDot(*a, g, [&](int i) { return Q3_KValue(w, w + 32, i); });
    }
    total += LoadFp16(w + 108) * a->d * static_cast<float>(dot);
  }
  return total;
}

// Q5_K: as Q4_K with the fifth bit of weight l of sub-block j at bit j of qh[l].
float DotQ5_K(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kQ5_KBytes, ++a) {
    const uint8_t* qh = w + 16;
    int32_t scaled = 0, mins = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t scale, min;
      Q4_KScaleMin(w + 4, j, &scale, &min);
      const uint8_t* bytes = w + 48 + 32 * (j / 2);
      const auto value = [&](int i) {
        const int l = i % 32;
        return (j % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4) | (((qh[l] >> j) & 1) << 4);
      };
      scaled += scale * (GroupDot(*a, 2 * j, value) + GroupDot(*a, 2 * j + 1, value));
      mins += min * (a->group_sums[2 * j] + a->group_sums[2 * j + 1]);
    }
    total += a->d * (LoadFp16(w) * static_cast<float>(scaled) - LoadFp16(w + 2) * static_cast<float>(mins));
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

// IQ4_XS: eight sub-blocks of IQ4 values, each with its own 6-bit scale (less 32).
float DotIq4Xs(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float total = 0.0f;
  for (int64_t s = 0; s < count; ++s, w += kIq4XsBytes, ++a) {
    int32_t dot = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* qs = w + 8 + 16 * j;
      const auto value = [&](int i) {
        const int l = i % 32;
        return static_cast<int32_t>(kIq4Values[l < 16 ? qs[l] & 0x0f : qs[l - 16] >> 4]);
      };
      dot += (Iq4XsScale(w, j) - 32) * (GroupDot(*a, 2 * j, value) + GroupDot(*a, 2 * j + 1, value));
    }
    total += LoadFp16(w) * a->d * static_cast<float>(dot);
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

void WeightedRowSum(const float* weights, const float* rows, int64_t count, int64_t width, float* out) {
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t j = 0; j < width; ++j) out[j] += weights[t] * rows[t * width + j];
  }
}

void KeyScores(const float* keys, int64_t count, int64_t width, const float* query, float scale, float* scores) {
  for (int64_t t = 0; t < count; ++t) {
    scores[t] = scale * DotF32(reinterpret_cast<const uint8_t*>(keys + t * width), query, width);
  }
}

void StoreHalves(const float* from, int64_t count, uint8_t* to) {
  for (int64_t i = 0; i < count; ++i) StoreFp16(to + 2 * i, from[i]);
}

void LoadHalves(const uint8_t* from, int64_t count, float* to) {
  for (int64_t i = 0; i < count; ++i) to[i] = LoadFp16(from + 2 * i);
}

void StoreQ8_0(const float* from, int64_t count, uint8_t* to) {
  QuantizeQ8_0(from, to, static_cast<size_t>(count) / kLegacyBlock);
}

void LoadQ8_0(const uint8_t* from, int64_t count, float* to) {
  DequantizeQ8_0(from, to, static_cast<size_t>(count) / kLegacyBlock);
}

}  // namespace

const KernelSet& ScalarKernels() {
  static const KernelSet set = [] {
    KernelSet scalar;
    scalar.name = "scalar";
    scalar.quantize = Quantize;
    scalar.quantize_super = QuantizeSuper;
    scalar.dot_f16 = DotF16;
    scalar.dot_f32 = DotF32;
    scalar.weighted_row_sum = WeightedRowSumsRowByRow<WeightedRowSum>;
    scalar.key_scores = KeyScoresRowByRow<KeyScores>;
    scalar.store_f16 = StoreHalves;
    scalar.load_f16 = LoadHalves;
    scalar.store_q8_0 = StoreQ8_0;
    scalar.load_q8_0 = LoadQ8_0;
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
