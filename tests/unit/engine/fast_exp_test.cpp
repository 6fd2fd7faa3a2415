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

TEST(ShiftedExpInPlace, GivesExpInPlaceOfTheShiftedValuesAndTheirSum) {
  for (int64_t n : {1, 15, 16, 17, 128, 131}) {
    std::vector<float> v(static_cast<size_t>(n) + 1);
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 0.37f * static_cast<float>(i % 23) - 3.0f;
    v[static_cast<size_t>(n)] = 7.0f;  // past the end: untouched
    std::vector<float> want(v.begin(), v.begin() + n);
    for (float& w : want) w -= 2.5f;
    ExpInPlace(want.data(), n);
    double sum = 0;
    for (float w : want) sum += w;
    const float got_sum = ShiftedExpInPlace(v.data(), n, 2.5f);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(v[static_cast<size_t>(i)], want[static_cast<size_t>(i)]) << n << " " << i;
    EXPECT_NEAR(got_sum, sum, 1e-6 * sum) << n;
    EXPECT_EQ(v[static_cast<size_t>(n)], 7.0f);
  }
}

TEST(MaxOf, FindsTheLargestAnywhereIncludingTheTail) {
  for (int64_t n : {1, 15, 16, 17, 33, 100}) {
    for (int64_t at = 0; at < n; ++at) {
      std::vector<float> v(static_cast<size_t>(n), -5.0f);
      v[static_cast<size_t>(at)] = -0.25f;
      EXPECT_EQ(MaxOf(v.data(), n), -0.25f) << n << " " << at;
    }
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> masked = {ninf, ninf, -3.0f};
  EXPECT_EQ(MaxOf(masked.data(), 3), -3.0f);
}

}  // namespace
}  // namespace edgellm::engine
