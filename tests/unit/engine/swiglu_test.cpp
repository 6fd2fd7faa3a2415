#include "daemon/engine/swiglu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace edgellm::engine {
namespace {

double ExactSwiGlu(double gate, double up) { return gate / (1.0 + std::exp(-gate)) * up; }

TEST(SwiGluInPlace, MatchesTheExactFunctionOverEveryLengthAndChunk) {
  // Lengths around the 256-value chunk, so both a chunk's end and the tail are met.
  for (int64_t n : {0, 1, 7, 255, 256, 257, 1000}) {
    std::vector<float> gate(static_cast<size_t>(n)), up(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      gate[i] = -20.0f + 40.0f * static_cast<float>(i) / static_cast<float>(std::max<int64_t>(n - 1, 1));
      up[i] = 0.5f + 0.01f * static_cast<float>(i % 97);
    }
    std::vector<float> out = gate;
    SwiGluInPlace(out.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double exact = ExactSwiGlu(gate[i], up[i]);
      EXPECT_NEAR(out[i], exact, 8 * std::numeric_limits<float>::epsilon() * std::max(1.0, std::abs(exact)))
          << "n=" << n << " i=" << i << " gate=" << gate[i];
    }
  }
}

TEST(SwiGluInPlace, SaturatesLikeTheExactFunctionAndKeepsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> gate = {-1000.0f, -90.0f, 90.0f, 1000.0f, inf, std::nanf("")};
  const std::vector<float> up = {2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f};
  SwiGluInPlace(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
  EXPECT_EQ(gate[0], 0.0f);
  EXPECT_EQ(gate[1], 0.0f);
  EXPECT_EQ(gate[2], 180.0f);
  EXPECT_EQ(gate[3], 2000.0f);
  EXPECT_EQ(gate[4], inf);
  EXPECT_TRUE(std::isnan(gate[5]));
}

}  // namespace
}  // namespace edgellm::engine
