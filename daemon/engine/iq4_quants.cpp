#include "daemon/engine/iq4_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "daemon/engine/legacy_quants.h"

namespace edgellm::engine {
namespace {

// The index of the value nearest `v` (in units of the block's scale).
int NearestIndex(float v) {
  int best = 0;
  for (int i = 1; i < 16; ++i) {
    if (std::fabs(kIq4Values[i] - v) < std::fabs(kIq4Values[best] - v)) best = i;
  }
  return best;
}

// 32 weights at `step` per unit into 16 bytes of index pairs.
void StoreIndices(const float* x, float step, uint8_t* qs) {
  const float inverse = step != 0.0f ? 1.0f / step : 0.0f;
  for (int j = 0; j < 16; ++j) {
    const int lo = NearestIndex(x[j] * inverse), hi = NearestIndex(x[j + 16] * inverse);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

}  // namespace

void QuantizeIq4Nl(const float* x, uint8_t* out, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, x += 32, out += 18) {
    // The largest weight, with its sign, maps to the value -127.
    StoreFp16(out, SignedMax(x, 32) / static_cast<float>(kIq4Values[0]));
    StoreIndices(x, LoadFp16(out), out + 2);
  }
}

void DequantizeIq4Nl(const uint8_t* in, float* y, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b, in += 18, y += 32) {
    const float d = LoadFp16(in);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4Values[in[2 + j] & 0x0f]);
      y[j + 16] = d * static_cast<float>(kIq4Values[in[2 + j] >> 4]);
    }
  }
}

void QuantizeIq4Xs(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += 256, out += kIq4XsBytes) {
    float scale[8];
    float amax = 0.0f;
    for (int j = 0; j < 8; ++j) {
      scale[j] = SignedMax(x + 32 * j, 32) / static_cast<float>(kIq4Values[0]);
      amax = std::max(amax, std::fabs(scale[j]));
    }
    const float d = amax / 31.0f;
    StoreFp16(out, d);
    const float d_stored = LoadFp16(out);
    std::memset(out + 2, 0, 6);
    int scales_h = 0;
    for (int j = 0; j < 8; ++j) {
      const int ls = (d != 0.0f ? std::clamp(static_cast<int>(std::lround(scale[j] / d)), -32, 31) : 0) + 32;
      out[4 + j / 2] = static_cast<uint8_t>(out[4 + j / 2] | ((ls & 0x0f) << (4 * (j % 2))));
      scales_h |= (ls >> 4) << (2 * j);
      StoreIndices(x + 32 * j, d_stored * static_cast<float>(ls - 32), out + 8 + 16 * j);
    }
    out[2] = static_cast<uint8_t>(scales_h);
    out[3] = static_cast<uint8_t>(scales_h >> 8);
  }
}

void DequantizeIq4Xs(const uint8_t* in, float* y, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, in += kIq4XsBytes, y += 256) {
    const float d = LoadFp16(in);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * static_cast<float>(Iq4XsScale(in, j) - 32);
      const uint8_t* qs = in + 8 + 16 * j;
      for (int l = 0; l < 16; ++l) {
        y[32 * j + l] = dl * static_cast<float>(kIq4Values[qs[l] & 0x0f]);
        y[32 * j + l + 16] = dl * static_cast<float>(kIq4Values[qs[l] >> 4]);
      }
    }
  }
}

}  // namespace edgellm::engine
