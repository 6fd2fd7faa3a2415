#include "daemon/engine/gelu.h"

#include <array>
#include <cmath>

#include "common/fp16.h"

namespace edgellm::engine {
namespace {

constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
constexpr float kCubicCoefficient = 0.044715f;

// GeluTanh of every half-precision value, rounded to half precision.
const std::array<uint16_t, 1 << 16>& Table() {
  static const auto* table = [] {
    auto* t = new std::array<uint16_t, 1 << 16>();
    for (uint32_t h = 0; h < t->size(); ++h) (*t)[h] = Fp32ToFp16(GeluTanh(Fp16ToFp32(static_cast<uint16_t>(h))));
    return t;
  }();
  return *table;
}

}  // namespace

float GeluTanh(float x) {
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCubicCoefficient * x * x)));
}

float GeluTanhAsGgml(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return Fp16ToFp32(Table()[Fp32ToFp16(x)]);
}

}  // namespace edgellm::engine
