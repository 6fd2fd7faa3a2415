#include "daemon/engine/k_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "daemon/engine/fp16.h"

namespace edgellm::engine {
namespace {

int Clamp(int v, int lo, int hi) { return std::min(std::max(v, lo), hi); }

}  // namespace

void QuantizeQ4_K(const float* x, uint8_t* out, size_t super_blocks) {
  for (size_t s = 0; s < super_blocks; ++s, x += kSuperBlock, out += kQ4_KBytes) {
    // Per sub-block: w ≈ scale*q - min, q in 0..15, min >= 0.
    float scale[8], min[8];
    for (int j = 0; j < 8; ++j) {
      const float* v = x + 32 * j;
      const float lo = std::min(0.0f, *std::min_element(v, v + 32));
      const float hi = *std::max_element(v, v + 32);
      scale[j] = (hi - lo) / 15.0f;
      min[j] = -lo;
    }
    const float d = *std::max_element(scale, scale + 8) / 63.0f;
    const float dmin = *std::max_element(min, min + 8) / 63.0f;
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(d > 0 ? Clamp(static_cast<int>(std::lround(scale[j] / d)), 0, 63) : 0);
      mn[j] = static_cast<uint8_t>(dmin > 0 ? Clamp(static_cast<int>(std::lround(min[j] / dmin)), 0, 63) : 0);
    }
    StoreFp16(out, d);
    StoreFp16(out + 2, dmin);
    uint8_t* packed = out + 4;
    for (int j = 0; j < 4; ++j) {
      packed[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
      packed[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
      packed[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
    }
    // The scales as stored (fp16 and 6 bits) decide the quants.
    const float d_stored = LoadFp16(out), dmin_stored = LoadFp16(out + 2);
    uint8_t q[kSuperBlock];
    for (int j = 0; j < 8; ++j) {
      const float step = d_stored * sc[j], offset = dmin_stored * mn[j];
      for (int l = 0; l < 32; ++l) {
        q[32 * j + l] = static_cast<uint8_t>(
            step > 0 ? Clamp(static_cast<int>(std::lround((x[32 * j + l] + offset) / step)), 0, 15) : 0);
      }
    }
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
