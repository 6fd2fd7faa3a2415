#include "daemon/engine/k_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "daemon/engine/legacy_quants.h"

namespace edgellm::engine {
namespace {

int Clamp(int v, int lo, int hi) { return std::min(std::max(v, lo), hi); }

// v / step rounded into [lo, hi]; 0 when the step is 0.
int QuantizeTo(float v, float step, int lo, int hi) {
  return step != 0.0f ? Clamp(static_cast<int>(std::lround(v / step)), lo, hi) : 0;
}

// Per group of 16: w ≈ scale*q - min with q in 0..levels and min >= 0, the
// asymmetric scheme of Q2_K (and, per 32, of Q4_K and Q5_K).
void GroupScaleMin(const float* v, int n, int levels, float* scale, float* min) {
  const float lo = std::min(0.0f, *std::min_element(v, v + n));
  const float hi = *std::max_element(v, v + n);
  *scale = (hi - lo) / static_cast<float>(levels);
  *min = -lo;
}

// Sets the two low bits of weight i (see k_quants.h).
void StoreLow2Bits(uint8_t* qs, int i, int q) {
  const int k = i / 128, j = (i % 128) / 32, hl = i % 32;
  qs[32 * k + hl] = static_cast<uint8_t>(qs[32 * k + hl] | ((q & 3) << (2 * j)));
}

// The 12 bytes holding eight 6-bit scales and mins, as Q4_K and Q5_K store them.
void PackScaleMin(const uint8_t sc[8], const uint8_t mn[8], uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
  }
}

// Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins. Writes
// d, dmin and the packed scales at `out` and each weight's q (0..levels).
void QuantizeScaleMin32(const float* x, int levels, uint8_t* out, uint8_t q[kSuperBlock]) {
  float scale[8], min[8];
  for (int j = 0; j < 8; ++j) GroupScaleMin(x + 32 * j, 32, levels, &scale[j], &min[j]);
  const float d = *std::max_element(scale, scale + 8) / 63.0f;
  const float dmin = *std::max_element(min, min + 8) / 63.0f;
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(QuantizeTo(scale[j], d, 0, 63));
    mn[j] = static_cast<uint8_t>(QuantizeTo(min[j], dmin, 0, 63));
  }
  StoreFp16(out, d);
  StoreFp16(out + 2, dmin);
  PackScaleMin(sc, mn, out + 4);
  // The scales as stored (fp16 and 6 bits) decide the quants.
  const float d_stored = LoadFp16(out), dmin_stored = LoadFp16(out + 2);
  for (int j = 0; j < 8; ++j) {
    const float step = d_stored * sc[j], offset = dmin_stored * mn[j];
    for (int l = 0; l < 32; ++l) q[32 * j + l] = static_cast<uint8_t>(QuantizeTo(x[32 * j + l] + offset, step, 0, levels));
  }
}

}  // namespace

void QuantizeQ2_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ2_KBytes) {
    float scale[16], min[16];
    for (int g = 0; g < 16; ++g) GroupScaleMin(x + 16 * g, 16, 3, &scale[g], &min[g]);
    const float d = *std::max_element(scale, scale + 16) / 15.0f;
    const float dmin = *std::max_element(min, min + 16) / 15.0f;
    StoreFp16(out + 80, d);
    StoreFp16(out + 82, dmin);
    const float d_stored = LoadFp16(out + 80), dmin_stored = LoadFp16(out + 82);
    uint8_t* qs = out + 16;
    std::memset(qs, 0, 64);
    for (int g = 0; g < 16; ++g) {
      const int sc = QuantizeTo(scale[g], d, 0, 15), mn = QuantizeTo(min[g], dmin, 0, 15);
      out[g] = static_cast<uint8_t>(sc | (mn << 4));
      const float step = d_stored * static_cast<float>(sc), offset = dmin_stored * static_cast<float>(mn);
      for (int l = 0; l < 16; ++l) StoreLow2Bits(qs, 16 * g + l, QuantizeTo(x[16 * g + l] + offset, step, 0, 3));
    }
  }
}

void DequantizeQ2_K(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kQ2_KBytes, y += kSuperBlock) {
    const float d = LoadFp16(in + 80), min = LoadFp16(in + 82);
    for (int i = 0; i < static_cast<int>(kSuperBlock); ++i) {
      const uint8_t sc = in[i / 16];
      const float dl = d * static_cast<float>(sc & 0x0f), ml = min * static_cast<float>(sc >> 4);
      y[i] = dl * static_cast<float>(Low2Bits(in + 16, i)) - ml;
    }
  }
}

void QuantizeQ3_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ3_KBytes) {
    // Per group of 16: w ≈ scale*q with q in -4..3, the weight of largest
    // magnitude (with its sign) mapped to -4; scales may be negative.
    float scale[16];
    float largest = 0.0f;
    for (int g = 0; g < 16; ++g) {
      scale[g] = SignedMax(x + 16 * g, 16) / -4.0f;
      largest = std::max(largest, std::fabs(scale[g]));
    }
    const float d = largest / 31.0f;
    StoreFp16(out + 108, d);
    const float d_stored = LoadFp16(out + 108);
    uint8_t* hmask = out;
    uint8_t* qs = out + 32;
    uint8_t* packed = out + 96;
    std::memset(out, 0, 108);
    for (int g = 0; g < 16; ++g) {
      const int sc = QuantizeTo(scale[g], d, -32, 31);
      const int stored = sc + 32;
      packed[g % 8] = static_cast<uint8_t>(packed[g % 8] | ((stored & 0x0f) << (g < 8 ? 0 : 4)));
      packed[8 + g % 4] = static_cast<uint8_t>(packed[8 + g % 4] | ((stored >> 4) << (2 * (g / 4))));
      const float step = d_stored * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * g + l;
        const int v = QuantizeTo(x[i], step, -4, 3) + 4;  // 0..7: two low bits, and the high one
        StoreLow2Bits(qs, i, v);
        if (v >= 4) {
          const int k = i / 128, j = (i % 128) / 32;
          hmask[i % 32] = static_cast<uint8_t>(hmask[i % 32] | (1 << (4 * k + j)));
        }
      }
    }
  }
}

void DequantizeQ3_K(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kQ3_KBytes, y += kSuperBlock) {
    const float d_all = LoadFp16(in + 108);
    uint8_t scales[16];
    Q3_KScales(in + 96, scales);
    for (int i = 0; i < static_cast<int>(kSuperBlock); ++i) {
      const float dl = d_all * static_cast<float>(static_cast<int8_t>(scales[i / 16]) - 32);
      y[i] = dl * static_cast<float>(Q3_KValue(in, in + 32, i));
    }
  }
}

void QuantizeQ5_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ5_KBytes) {
    uint8_t q[kSuperBlock];
    QuantizeScaleMin32(x, 31, out, q);
    uint8_t* qh = out + 16;
    uint8_t* qs = out + 48;
    std::memset(qh, 0, 32);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t even = q[64 * c + l], odd = q[64 * c + 32 + l];
        qs[32 * c + l] = static_cast<uint8_t>((even & 0x0f) | ((odd & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>(qh[l] | ((even >> 4) << (2 * c)) | ((odd >> 4) << (2 * c + 1)));
      }
    }
  }
}

void DequantizeQ5_K(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kQ5_KBytes, y += kSuperBlock) {
    const float d = LoadFp16(in), min = LoadFp16(in + 2);
    const uint8_t* qh = in + 16;
    const uint8_t* qs = in + 48;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      Q4_KScaleMin(in + 4, j, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      const uint8_t* bytes = qs + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) {
        const int low = j % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4;
        y[32 * j + l] = d1 * static_cast<float>(low + ((qh[l] >> j) & 1 ? 16 : 0)) - m1;
      }
    }
  }
}

void QuantizeQ4_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ4_KBytes) {
    uint8_t q[kSuperBlock];
    QuantizeScaleMin32(x, 15, out, q);
    uint8_t* qs = out + 16;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
  }
}

void DequantizeQ4_K(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kQ4_KBytes, y += kSuperBlock) {
    const float d = LoadFp16(in), dmin = LoadFp16(in + 2);
    const uint8_t* qs = in + 16;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, mn;
      Q4_KScaleMin(in + 4, j, &sc, &mn);
      const uint8_t* bytes = qs + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) {
        const int q = j % 2 == 0 ? bytes[l] & 0x0f : bytes[l] >> 4;
        y[32 * j + l] = d * sc * q - dmin * mn;
      }
    }
  }
}

void QuantizeQ6_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ6_KBytes) {
    float group_scale[16];
    for (int g = 0; g < 16; ++g) {
      float amax = 0.0f;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * g + l]));
      group_scale[g] = amax / 31.0f;
    }
    const float d = *std::max_element(group_scale, group_scale + 16) / 127.0f;
    StoreFp16(out + 208, d);
    const float d_stored = LoadFp16(out + 208);
    int8_t* scales = reinterpret_cast<int8_t*>(out + 192);
    uint8_t q[kSuperBlock];
    for (int g = 0; g < 16; ++g) {
      scales[g] = static_cast<int8_t>(d > 0 ? Clamp(static_cast<int>(std::lround(group_scale[g] / d)), 0, 127) : 0);
      const float step = d_stored * scales[g];
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * g + l;
        q[i] = static_cast<uint8_t>(step > 0 ? Clamp(static_cast<int>(std::lround(x[i] / step)), -32, 31) + 32 : 32);
      }
    }
    uint8_t* ql = out;
    uint8_t* qh = out + 128;
    std::memset(ql, 0, 128);
    std::memset(qh, 0, 64);
    for (int i = 0; i < static_cast<int>(kSuperBlock); ++i) {
      const int half = i / 128, p = i % 128, quarter = p / 32, l = p % 32;
      uint8_t& low = ql[half * 64 + l + (quarter & 1) * 32];
      low = static_cast<uint8_t>(low | ((q[i] & 0x0f) << (quarter >= 2 ? 4 : 0)));
      qh[half * 32 + l] = static_cast<uint8_t>(qh[half * 32 + l] | ((q[i] >> 4) << (2 * quarter)));
    }
  }
}

void DequantizeQ6_K(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kQ6_KBytes, y += kSuperBlock) {
    const float d = LoadFp16(in + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(in + 192);
    for (int i = 0; i < static_cast<int>(kSuperBlock); ++i) {
      y[i] = d * scales[i / 16] * (Q6_KValue(in, in + 128, i) - 32);
    }
  }
}

}  // namespace edgellm::engine
