#include "daemon/engine/fast_exp.h"

#include <cstring>
#include <limits>

#include "daemon/engine/cpu_clones.h"

namespace edgellm::engine {

namespace {

using Floats = float __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

// Every step is a plain select, not a branch, so that the loops calling it vectorize.
inline float ExpOf(float in) {
  constexpr float kLog2e = 1.44269504f, kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 · 2^23: adding and subtracting it rounds to an integer
  constexpr float kInfinity = std::numeric_limits<float>::infinity();
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
  return in != in ? in : e;  // a NaN stays one
}

}  // namespace

EDGELLM_CPU_CLONES void ExpInPlace(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = ExpOf(v[i]);
}

EDGELLM_CPU_CLONES float ShiftedExpInPlace(float* v, int64_t n, float shift) {
  Floats sums = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) v[i + l] = ExpOf(v[i + l] - shift);
    Floats chunk;
    std::memcpy(&chunk, v + i, sizeof(chunk));
    sums += chunk;
  }
  float total = 0.0f;
  for (; i < n; ++i) {
    v[i] = ExpOf(v[i] - shift);
    total += v[i];
  }
  for (int64_t l = 0; l < kLanes; ++l) total += sums[l];
  return total;
}

EDGELLM_CPU_CLONES float MaxOf(const float* v, int64_t n) {
  float largest = v[0];
  int64_t i = 0;
  if (n >= kLanes) {
    Floats best;
    std::memcpy(&best, v, sizeof(best));
    for (i = kLanes; i + kLanes <= n; i += kLanes) {
      Floats chunk;
      std::memcpy(&chunk, v + i, sizeof(chunk));
      best = chunk > best ? chunk : best;
    }
    for (int64_t l = 0; l < kLanes; ++l) largest = best[l] > largest ? best[l] : largest;
  }
  for (; i < n; ++i) largest = v[i] > largest ? v[i] : largest;
  return largest;
}

}  // namespace edgellm::engine
