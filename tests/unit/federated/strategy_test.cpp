#include "federated/aggregator/strategy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "daemon/engine/lora_adapter.h"
#include "federated/adapter/adapter_tensors.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::federated {
namespace {

TensorSet Layout() { return {{"x", 2, 3, std::vector<float>(6)}, {"y", 1, 4, std::vector<float>(4)}}; }

TensorSet Filled(std::vector<float> x, std::vector<float> y) { return {{"x", 2, 3, std::move(x)}, {"y", 1, 4, std::move(y)}}; }

StrategyConfig Named(const std::string& name) {
  StrategyConfig config;
  config.name = name;
  return config;
}

TEST(Strategy, FedAvgIsTheExampleWeightedMean) {
  auto agg = NewAggregation(Named("fedavg"), Layout(), 0);
  agg->Add(Filled({1, 2, 3, 4, 5, 6}, {1, 1, 1, 1}), 1);
  agg->Add(Filled({0, 0, 0, 0, 0, 0}, {2, 2, 2, 2}), 3);
  agg->Add(Filled({6, 6, 6, 6, 6, 6}, {-1, 0, 1, 2}), 2);
  auto mean = agg->Finish();
  ASSERT_TRUE(mean.ok());
  // By hand: (1·u1 + 3·u2 + 2·u3) / 6.
  const std::vector<float> x = {13 / 6.f, 14 / 6.f, 15 / 6.f, 16 / 6.f, 17 / 6.f, 18 / 6.f};
  const std::vector<float> y = {5 / 6.f, 7 / 6.f, 9 / 6.f, 11 / 6.f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ((*mean)[0].values[i], x[i]);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ((*mean)[1].values[i], y[i]);
  EXPECT_EQ(agg->count(), 3);
  EXPECT_FALSE(NewAggregation(Named("fedavg"), Layout(), 0)->Finish().ok());
}

TEST(Strategy, MedianAndTrimmedMeanResistOneWildlyScaledUpdate) {
  std::vector<TensorSet> honest;
  for (float v : {1.0f, 1.1f, 0.9f, 1.05f}) honest.push_back(Filled(std::vector<float>(6, v), std::vector<float>(4, -v)));
  const TensorSet wild = Filled(std::vector<float>(6, 1000.0f), std::vector<float>(4, -1000.0f));
  StrategyConfig trimmed = Named("trimmed_mean");
  trimmed.trim_fraction = 0.2;  // of 5 updates: one dropped at each end
  for (const StrategyConfig& config : {Named("median"), trimmed, Named("fedavg")}) {
    auto agg = NewAggregation(config, Layout(), 0);
    for (const TensorSet& h : honest) agg->Add(h, 1);
    agg->Add(wild, 1);
    auto result = agg->Finish();
    ASSERT_TRUE(result.ok());
    if (config.name == "fedavg") {
      EXPECT_GT((*result)[0].values[0], 100.0f);  // the mean follows the outlier
    } else {
      EXPECT_NEAR((*result)[0].values[0], 1.0f, 0.06f) << config.name;
      EXPECT_NEAR((*result)[1].values[3], -1.0f, 0.06f) << config.name;
    }
  }
}

TEST(Strategy, KrumPicksTheUpdatesClosestToTheirNeighboursAndMultiKrumAveragesThem) {
  std::vector<TensorSet> honest;
  for (float v : {1.0f, 1.01f, 0.99f, 1.2f, 0.7f}) {
    honest.push_back(Filled(std::vector<float>(6, v), std::vector<float>(4, -v)));
  }
  // Two colluding updates close to each other and far from the rest.
  const TensorSet wild = Filled(std::vector<float>(6, 50.0f), std::vector<float>(4, 50.0f));
  StrategyConfig krum = Named("krum");
  krum.krum_byzantine = 2;
  krum.norm_bound = 0;
  for (int32_t selected : {1, 3}) {
    krum.krum_selected = selected;
    auto agg = NewAggregation(krum, Layout(), 0);
    agg->Add(wild, 1);
    for (const TensorSet& h : honest) agg->Add(h, 1e9);  // weights do not count
    agg->Add(wild, 1);
    auto result = agg->Finish();
    ASSERT_TRUE(result.ok()) << result.status();
    // Scores (sums of the 3 smallest squared distances, per value): 1.01 → 0.0366,
    // 1.0 → 0.0402, 0.99 → 0.0446; the colluders' include the distance to the honest.
    // Krum: 1.01; multi-Krum of 3: the mean of 1.01, 1.0 and 0.99.
    const float expected = selected == 1 ? 1.01f : 1.0f;
    EXPECT_NEAR((*result)[0].values[0], expected, 1e-5f) << selected;
    EXPECT_NEAR((*result)[1].values[2], -expected, 1e-5f) << selected;
  }
  // Four updates cannot tolerate one Byzantine one (n must exceed 2f + 2).
  krum.krum_byzantine = 1;
  auto few = NewAggregation(krum, Layout(), 0);
  for (int i = 0; i < 4; ++i) few->Add(honest[static_cast<size_t>(i)], 1);
  EXPECT_EQ(few->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Strategy, NormBoundingScalesEachUpdateDownToTheBound) {
  TensorSet big = Filled({3, 0, 0, 0, 0, 0}, {4, 0, 0, 0});  // norm 5
  EXPECT_DOUBLE_EQ(BoundNorm(big, 1.0), 5.0);
  EXPECT_NEAR(L2Norm(big), 1.0, 1e-6);
  StrategyConfig config = Named("fedavg");
  config.norm_bound = 1.0;
  auto agg = NewAggregation(config, Layout(), 0);
  agg->Add(Filled({3, 0, 0, 0, 0, 0}, {4, 0, 0, 0}), 1);
  agg->Add(Filled({0.3f, 0, 0, 0, 0, 0}, {0.4f, 0, 0, 0}), 1);  // within the bound: unchanged
  auto mean = agg->Finish();
  ASSERT_TRUE(mean.ok());
  EXPECT_NEAR((*mean)[0].values[0], (0.6f + 0.3f) / 2, 1e-6);
}

TEST(Strategy, DpFedAvgClipsAddsCalibratedNoiseAndReportsEpsilon) {
  StrategyConfig config = Named("dp_fedavg");
  config.norm_bound = 0.5;
  config.noise_multiplier = 2.0;
  const int n = 10;
  TensorSet layout = {{"w", 100, 100, std::vector<float>(10000)}};
  auto agg = NewAggregation(config, layout, 42);
  for (int k = 0; k < n; ++k) agg->Add({{"w", 100, 100, std::vector<float>(10000, 1.0f)}}, 1000.0 * (k + 1));
  auto result = agg->Finish();
  ASSERT_TRUE(result.ok());
  // Each update (norm 100) is clipped to 0.5: every value 0.005; the mean of
  // ten is 0.005 whatever the weights; the noise on it has deviation z·S/n = 0.1.
  double sum = 0, sum_sq = 0;
  for (float v : (*result)[0].values) {
    sum += v;
    sum_sq += (v - 0.005) * (v - 0.005);
  }
  EXPECT_NEAR(sum / 10000, 0.005, 0.004);
  EXPECT_NEAR(std::sqrt(sum_sq / 10000), 0.1, 0.005);
  // The same seed gives the same noise: a round closed again after a crash is identical.
  auto again = NewAggregation(config, layout, 42);
  for (int k = 0; k < n; ++k) again->Add({{"w", 100, 100, std::vector<float>(10000, 1.0f)}}, 1);
  EXPECT_EQ((*again->Finish())[0].values, (*result)[0].values);
  // ε by RDP: for z = 1, one round, δ = 1e-5 the optimum is ≈ 5.30; more rounds or less noise spend more.
  EXPECT_NEAR(DpEpsilon(1.0, 1, 1e-5), 5.30, 0.02);
  EXPECT_GT(DpEpsilon(1.0, 10, 1e-5), DpEpsilon(1.0, 1, 1e-5));
  EXPECT_LT(DpEpsilon(4.0, 10, 1e-5), DpEpsilon(1.0, 10, 1e-5));
}

TEST(Strategy, FedAdamTakesTheAdaptiveStepAndCarriesItsMoments) {
  StrategyConfig config = Named("fedadam");
  config.server_learning_rate = 0.1;
  const TensorSet aggregate = Filled({1, -2, 0, 0, 0, 0}, {0.5f, 0, 0, 0});
  ServerOptimizerState state;
  const TensorSet step = ServerStep(config, aggregate, state);
  // m = 0.1·g, v = 0.01·g², step = η·m / (sqrt(v) + τ).
  for (float g : {1.0f, -2.0f}) {
    const float expected = static_cast<float>(0.1 * 0.1 * g / (std::sqrt(0.01 * g * g) + 1e-3));
    EXPECT_NEAR(step[0].values[g > 0 ? 0 : 1], expected, 1e-6);
  }
  EXPECT_FLOAT_EQ(state.m[0].values[0], 0.1f);
  const TensorSet second = ServerStep(config, aggregate, state);
  EXPECT_FLOAT_EQ(state.m[0].values[0], 0.9f * 0.1f + 0.1f);
  EXPECT_NE(second[0].values[0], step[0].values[0]);
  // FedAvg's server step is the aggregate scaled by the server learning rate.
  ServerOptimizerState unused;
  EXPECT_FLOAT_EQ(ServerStep(Named("fedavg"), aggregate, unused)[0].values[1], -2.0f);
}

TEST(Strategy, AveragingFfaLoraBDeltasAveragesTheWeightDeltasExactly) {
  auto model = edgellm::testing::LoadModel(edgellm::testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  engine::LoraConfig lora;
  lora.rank = 4;
  lora.targets = {engine::LoraTarget::kQ};
  lora.freeze_a = true;
  lora.seed = 99;
  auto start = engine::LoraAdapter::Create(lora, model->config());
  ASSERT_TRUE(start.ok());
  const engine::LoraWeights& w = *start->Find(0, engine::LoraTarget::kQ);
  // Three devices train B only (A is the shared seed's); each ΔW_k = s·ΔB_k·A.
  auto weight_delta = [&](const std::vector<float>& b_delta) {
    std::vector<double> dw(static_cast<size_t>(w.out * w.in), 0.0);
    for (int64_t o = 0; o < w.out; ++o)
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t i = 0; i < w.in; ++i) dw[o * w.in + i] += start->scale() * b_delta[o * 4 + r] * w.a[r * w.in + i];
    return dw;
  };
  const TensorSet layout = ZerosLike(AdapterTensors(*start, false));
  std::vector<TensorSet> deltas(3, layout);
  const std::vector<double> weights = {1, 2, 5};
  std::vector<double> mean_dw(static_cast<size_t>(w.out * w.in), 0.0);
  auto agg = NewAggregation(Named("fedavg"), layout, 0);
  for (int k = 0; k < 3; ++k) {
    for (size_t i = 0; i < deltas[k][0].values.size(); ++i) deltas[k][0].values[i] = std::cos(i * (k + 1.0f)) * 0.1f;
    const std::vector<double> dw = weight_delta(deltas[k][0].values);
    for (size_t i = 0; i < dw.size(); ++i) mean_dw[i] += weights[k] / 8.0 * dw[i];
    agg->Add(deltas[k], weights[k]);
  }
  auto averaged = agg->Finish();
  ASSERT_TRUE(averaged.ok());
  const std::vector<double> got = weight_delta((*averaged)[0].values);
  for (size_t i = 0; i < got.size(); i += 7) ASSERT_NEAR(got[i], mean_dw[i], 1e-6);
}

}  // namespace
}  // namespace edgellm::federated
