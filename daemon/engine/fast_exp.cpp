#include "daemon/engine/fast_exp.h"

#include <cstring>
#include <limits>

#include "daemon/engine/cpu_clones.h"

namespace edgellm::engine {

// Every step is a plain select, not a branch, so that the loop vectorizes.
EDGELLM_CPU_CLONES void ExpInPlace(float* v, int64_t n) {
  constexpr float kLog2e = 1.44269504f, kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 · 2^23: adding and subtracting it rounds to an integer
  constexpr float kInfinity = std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const float in = v[i];
    // Clamped into range first, so the conversion to int below is defined
    // for every input (a NaN becomes -87 here).
    float x = in > -87.0f ? in : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    const float k = (x * kLog2e + kRound) - kRound;
    const float r = (x - k * kLn2High) - k * kLn2Low;
    const float p =
        1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
    float two_to_k;
    std::memcpy(&two_to_k, &bits, sizeof(two_to_k));
    float e = p * two_to_k;
    e = in > 88.0f ? kInfinity : e;
    e = in < -87.0f ? 0.0f : e;
    v[i] = in != in ? in : e;  // a NaN stays one
  }
}

}  // namespace edgellm::engine
