#include "daemon/engine/legacy_quants.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "common/fp16.h"

namespace edgellm::engine {
namespace {

void MinMax(const float* x, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (size_t j = 0; j < kLegacyBlock; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

// Stores the 5-bit values of weights j and j+16 of a Q5 block: their low
// nibbles in qs[j], their fifth bits in `qh` (stored with StoreQ5HighBits).
void PackQ5Pair(uint32_t lo, uint32_t hi, size_t j, uint8_t* qs, uint32_t* qh) {
  qs[j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
  *qh |= ((lo & 0x10u) >> 4) << j;
  *qh |= ((hi & 0x10u) >> 4) << (j + 16);
}

void StoreQ5HighBits(uint32_t qh, uint8_t* out) {
  for (int b = 0; b < 4; ++b) out[b] = static_cast<uint8_t>(qh >> (8 * b));
}

}  // namespace

float SignedMax(const float* x, size_t n) {
  float amax = 0.0f, max = 0.0f;
  for (size_t j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void QuantizeQ4_0(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += kLegacyBlock, out += 18) {
    // The scale maps the weight of largest magnitude, with its sign, to -8.
    const float d = SignedMax(x, kLegacyBlock) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void DequantizeQ4_0(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 18, y += kLegacyBlock) {
    const float d = LoadFp16(in);
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      y[j] = static_cast<float>((in[2 + j] & 0x0f) - 8) * d;
      y[j + 16] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
    }
  }
}

void QuantizeQ4_1(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += kLegacyBlock, out += 20) {
    float min, max;
    MinMax(x, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    StoreFp16(out + 2, min);
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
      out[4 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void DequantizeQ4_1(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 20, y += kLegacyBlock) {
    const float d = LoadFp16(in), m = LoadFp16(in + 2);
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      y[j] = static_cast<float>(in[4 + j] & 0x0f) * d + m;
      y[j + 16] = static_cast<float>(in[4 + j] >> 4) * d + m;
    }
  }
}

void QuantizeQ5_0(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += kLegacyBlock, out += 22) {
    const float d = SignedMax(x, kLegacyBlock) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    uint32_t qh = 0;
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      const uint32_t lo = static_cast<uint32_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
      const uint32_t hi =
          static_cast<uint32_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f))));
      PackQ5Pair(lo, hi, j, out + 6, &qh);
    }
    StoreQ5HighBits(qh, out + 2);
  }
}

void DequantizeQ5_0(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 22, y += kLegacyBlock) {
    const float d = LoadFp16(in);
    const uint32_t qh = Q5HighBits(in + 2);
    for (int i = 0; i < static_cast<int>(kLegacyBlock); ++i) y[i] = static_cast<float>(Q5Value(in + 6, qh, i) - 16) * d;
  }
}

void QuantizeQ5_1(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += kLegacyBlock, out += 24) {
    float min, max;
    MinMax(x, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    StoreFp16(out + 2, min);
    uint32_t qh = 0;
    for (size_t j = 0; j < kLegacyBlock / 2; ++j) {
      const uint32_t lo = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const uint32_t hi = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      PackQ5Pair(lo, hi, j, out + 8, &qh);
    }
    StoreQ5HighBits(qh, out + 4);
  }
}

void DequantizeQ5_1(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 24, y += kLegacyBlock) {
    const float d = LoadFp16(in), m = LoadFp16(in + 2);
    const uint32_t qh = Q5HighBits(in + 4);
    for (int i = 0; i < static_cast<int>(kLegacyBlock); ++i) y[i] = static_cast<float>(Q5Value(in + 8, qh, i)) * d + m;
  }
}

void QuantizeQ8_0(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += kLegacyBlock, out += 34) {
    float amax = 0.0f;
    for (size_t j = 0; j < kLegacyBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    for (size_t j = 0; j < kLegacyBlock; ++j) {
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
    }
  }
}

void DequantizeQ8_0(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 34, y += kLegacyBlock) {
    const float d = LoadFp16(in);
    for (size_t j = 0; j < kLegacyBlock; ++j) y[j] = static_cast<int8_t>(in[2 + j]) * d;
  }
}

}  // namespace edgellm::engine
