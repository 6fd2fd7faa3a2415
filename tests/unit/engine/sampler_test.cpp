#include "daemon/engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

namespace edgellm::engine {
namespace {

SamplingParams Plain(float temperature, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

TEST(Sampler, GreedyPicksTheLargestLogitAndTheLowestIdOnTies) {
  Sampler s(Plain(0.0f));
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f}, {}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{5.0f, 1.0f, 5.0f}, {}), 0);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(static_cast<float>(i));
  auto run = [&](uint64_t seed) {
    Sampler s(Plain(1.0f, seed));
    std::vector<TokenId> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.Sample(logits, {}));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};  // p = 0.1, 0.2, 0.7
  Sampler s(Plain(1.0f, 9));
  std::map<TokenId, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.Sample(logits, {})];
  EXPECT_NEAR(counts[0] / static_cast<double>(n), 0.1, 0.015);
  EXPECT_NEAR(counts[1] / static_cast<double>(n), 0.2, 0.015);
  EXPECT_NEAR(counts[2] / static_cast<double>(n), 0.7, 0.015);
}

TEST(Sampler, LowTemperatureSharpens) {
  const std::vector<float> logits = {0.0f, 1.0f};
  Sampler s(Plain(0.05f, 5));
  int ones = 0;
  for (int i = 0; i < 1000; ++i) ones += s.Sample(logits, {}) == 1;
  EXPECT_GT(ones, 995);
}

TEST(Sampler, TopKTopPAndMinPRestrictTheSupport) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  auto support = [&](SamplingParams p) {
    Sampler s(p);
    std::set<TokenId> seen;
    for (int i = 0; i < 3000; ++i) seen.insert(s.Sample(logits, {}));
    return seen;
  };
  SamplingParams k = Plain(1.0f);
  k.top_k = 2;
  EXPECT_EQ(support(k), (std::set<TokenId>{0, 1}));
  SamplingParams p = Plain(1.0f);
  p.top_p = 0.85f;  // 0.5 + 0.3 < 0.85 <= 0.95
  EXPECT_EQ(support(p), (std::set<TokenId>{0, 1, 2}));
  SamplingParams m = Plain(1.0f);
  m.min_p = 0.5f;  // keep p >= 0.25
  EXPECT_EQ(support(m), (std::set<TokenId>{0, 1}));
}

TEST(Sampler, RepetitionPenaltyDemotesRecentTokens) {
  SamplingParams p = Plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  const std::vector<float> logits = {1.0f, 1.5f, -1.0f};
  EXPECT_EQ(s.Sample(logits, {}), 1);
  EXPECT_EQ(s.Sample(logits, std::vector<TokenId>{1}), 0);  // 1.5 / 2 < 1.0
  p.repeat_last_n = 1;
  Sampler windowed(p);
  EXPECT_EQ(windowed.Sample(logits, std::vector<TokenId>{1, 2}), 1);  // 1 is outside the window
}

TEST(Sampler, ValidateNamesTheBadField) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_NE(p.Validate().message().find("top_p"), absl::string_view::npos);
  p = {};
  p.temperature = NAN;
  EXPECT_NE(p.Validate().message().find("temperature"), absl::string_view::npos);
  p = {};
  p.repeat_penalty = -1.0f;
  EXPECT_FALSE(p.Validate().ok());
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

}  // namespace
}  // namespace edgellm::engine
