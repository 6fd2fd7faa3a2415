#include "daemon/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace edgellm::train {
namespace {

TEST(Schedule, WarmsUpThenFollowsACosineToItsFloor) {
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(0, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(4, 100, 10, 1.0, 0.1), 0.5);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(9, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(10, 100, 10, 1.0, 0.1), 1.0);
  // The decay runs over steps 10..99: step 54 is 44/89 of the way down the cosine.
  EXPECT_NEAR(ScheduledLearningRate(54, 100, 10, 1.0, 0.1), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 44 / 89.0)), 1e-12);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(99, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(0, 1, 0, 2.0, 0.0), 2.0);
}

TEST(AdamW, TakesTheStepOfItsDefinition) {
  at::Tensor p = at::tensor({1.0f, -2.0f}).requires_grad_(true);
  p.mutable_grad() = at::tensor({0.5f, -0.25f});
  AdamW adam({p}, AdamWOptions{0.9, 0.999, 1e-8, 0.1});
  adam.Step(0.01);
  // First step: m̂ = g, v̂ = g², so the update is lr·sign(g), after decay p·(1 − lr·wd).
  const float* v = p.data_ptr<float>();
  EXPECT_NEAR(v[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
  EXPECT_NEAR(v[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
  EXPECT_EQ(adam.steps(), 1);
  p.mutable_grad() = at::tensor({0.5f, 0.25f});
  adam.Step(0.01);
  // Second step by hand for the second value: m = 0.9·(−0.025) + 0.1·0.25 ... bias-corrected.
  const double m = 0.9 * (0.1 * -0.25) + 0.1 * 0.25, vv = 0.999 * (0.001 * 0.0625) + 0.001 * 0.0625;
  const double m_hat = m / (1 - 0.81), v_hat = vv / (1 - 0.999 * 0.999);
  const double before = -2.0 * (1 - 0.001) + 0.01;
  EXPECT_NEAR(v[1], before * (1 - 0.001) - 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8), 1e-6);
}

TEST(ClipGradients, ScalesToTheNormAndReportsTheOneBefore) {
  at::Tensor a = at::zeros({2}).requires_grad_(true), b = at::zeros({1}).requires_grad_(true);
  a.mutable_grad() = at::tensor({3.0f, 0.0f});
  b.mutable_grad() = at::tensor({4.0f});
  EXPECT_NEAR(ClipGradients({a, b}, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8f, 1e-5);
  EXPECT_NEAR(ClipGradients({a, b}, 10.0), 1.0, 1e-5);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-5) << "below the bound: left as it is";
}

}  // namespace
}  // namespace edgellm::train
