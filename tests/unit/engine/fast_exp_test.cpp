#include "daemon/engine/fast_exp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace edgellm::engine {
namespace {

TEST(ExpInPlace, WithinAFewUlpOfStdExpAcrossItsRange) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.0137f) x.push_back(v);
  for (float v : {-87.0f, -1e-7f, 0.0f, 1e-7f, 0.5f, -0.5f, 0.34657359f, -0.34657359f, 88.0f}) x.push_back(v);
  std::vector<float> e = x;
  ExpInPlace(e.data(), static_cast<int64_t>(e.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(e[i] - exact) / exact);
  }
  EXPECT_LT(worst, 4 * std::numeric_limits<float>::epsilon()) << "worst relative error " << worst;
}

TEST(ExpInPlace, OutOfRangeInfinitiesAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {-inf, -1000.0f, -87.5f, 88.5f, 1000.0f, inf, std::nanf("")};
  ExpInPlace(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_EQ(v[2], 0.0f);
  EXPECT_EQ(v[3], inf);
  EXPECT_EQ(v[4], inf);
  EXPECT_EQ(v[5], inf);
  EXPECT_TRUE(std::isnan(v[6]));
}

TEST(ExpInPlace, EveryLengthIncludingTheVectorTail) {
  for (int64_t n = 0; n <= 37; ++n) {
    std::vector<float> v(static_cast<size_t>(n) + 1, -1.0f);
    v[static_cast<size_t>(n)] = 7.0f;  // past the end: untouched
    ExpInPlace(v.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(v[static_cast<size_t>(i)], std::exp(-1.0f), 1e-6f) << n;
    EXPECT_EQ(v[static_cast<size_t>(n)], 7.0f);
  }
}

}  // namespace
}  // namespace edgellm::engine
