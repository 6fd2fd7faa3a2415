#include "daemon/engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

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

TEST(ArgMax, IsTheFirstLargestAtEveryLengthAndWithTies) {
  std::mt19937 rng(7);
  for (size_t n : {size_t{1}, size_t{5}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{33}, size_t{49152},
                   size_t{151936}}) {
    for (int trial = 0; trial < 20; ++trial) {
      // Few distinct values, so ties are common, in every lane and the tail.
      std::uniform_int_distribution<int> value(-4, trial % 5);
      std::vector<float> logits(n);
      for (float& l : logits) l = static_cast<float>(value(rng));
      const auto expected = std::max_element(logits.begin(), logits.end()) - logits.begin();
      ASSERT_EQ(ArgMax(logits), expected) << n << " logits, trial " << trial;
    }
  }
}

TEST(ArgMax, NeverPicksANanAndFallsToTheFirstIdWithoutNumbers) {
  std::vector<float> logits(40, -1.0f);
  logits[3] = std::nanf("");
  logits[21] = 2.0f;
  logits[37] = std::nanf("");
  EXPECT_EQ(ArgMax(logits), 21);
  std::vector<float> nothing(40, -std::numeric_limits<float>::infinity());
  nothing[5] = std::nanf("");
  EXPECT_EQ(ArgMax(nothing), 0);
  const std::vector<float> tail_only = {-std::numeric_limits<float>::infinity(), 3.0f, 3.0f};
  EXPECT_EQ(ArgMax(tail_only), 1);
}

TEST(AllFinite, FindsANanOrAnInfinityAnywhereInTheRow) {
  const float kNotFinite[] = {std::nanf(""), -std::nanf(""), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{49152}, size_t{49157}}) {
    std::vector<float> logits(n);
    for (size_t i = 0; i < n; ++i) logits[i] = static_cast<float>(i % 97) * 0.37f - 18.0f;
    logits[0] = std::numeric_limits<float>::max();
    logits[n - 1] = -std::numeric_limits<float>::max();
    if (n > 2) logits[n / 2] = std::numeric_limits<float>::denorm_min();
    ASSERT_TRUE(AllFinite(logits)) << n << " logits";
    // In the first lane, a middle one, the last of the vector part and the tail.
    for (size_t at : {size_t{0}, n / 2, (n / 16) * 16 - 1, n - 1}) {
      if (at >= n) continue;
      for (float bad : kNotFinite) {
        std::vector<float> spoiled = logits;
        spoiled[at] = bad;
        EXPECT_FALSE(AllFinite(spoiled)) << n << " logits, " << bad << " at " << at;
      }
    }
  }
  EXPECT_TRUE(AllFinite({}));
}

TEST(Sampler, GreedyPicksTheLargestLogitAndTheLowestIdOnTies) {
  Sampler s(Plain(0.0f));
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f}, {}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{5.0f, 1.0f, 5.0f}, {}), 0);
}

// Plain greedy skips building candidates; a mask that allows everything
// takes the full path: both pick the same token, ties included.
TEST(Sampler, PlainGreedyAgreesWithTheFullPath) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(-20, 20);  // few distinct values: many ties
  Sampler plain(Plain(0.0f)), full(Plain(0.0f));
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(1 + trial * 13 % 700);
    for (float& l : logits) l = 0.25f * static_cast<float>(level(rng));
    const std::vector<uint64_t> everything((logits.size() + 63) / 64, ~uint64_t{0});
    EXPECT_EQ(plain.Sample(logits, {}), full.Sample(logits, {}, nullptr, nullptr, everything)) << "trial " << trial;
  }
}

// Top-k below the vocabulary's size skips whole blocks of logits that
// cannot reach the top k; a mask that allows everything takes the full path
// (a candidate per token). Both must leave the same candidates, so the same
// seed draws the same tokens from bit-identical distributions: over many
// ties, vocabularies that are not whole blocks, k past the number of blocks,
// -inf logits, and repetition penalties above and below 1.
TEST(Sampler, TopKSkimmingAgreesWithTheFullPath) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> level(-40, 40);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = 2 + static_cast<size_t>(trial) * 37 % 900;
    std::vector<float> logits(n);
    for (float& l : logits) l = (trial % 3 == 0 ? 0.125f : 0.0173f) * static_cast<float>(level(rng));
    if (trial % 5 == 0) logits[static_cast<size_t>(trial) % n] = -std::numeric_limits<float>::infinity();
    SamplingParams params = Plain(0.4f + 0.01f * static_cast<float>(trial % 90), 1000 + static_cast<uint64_t>(trial));
    params.top_k = 1 + trial * 7 % static_cast<int>(std::min<size_t>(n - 1, 60));
    params.top_p = trial % 4 == 0 ? 1.0f : 0.9f;
    params.min_p = trial % 6 == 0 ? 0.0f : 0.05f;
    params.repeat_penalty = trial % 3 == 0 ? 1.0f : trial % 3 == 1 ? 1.3f : 0.7f;
    std::vector<TokenId> history;
    for (int i = 0; i < 20; ++i) history.push_back(static_cast<TokenId>((trial * 13 + i * 29) % (n + 5)));
    const std::vector<uint64_t> everything((n + 63) / 64, ~uint64_t{0});
    Sampler skimming(params), full(params);
    std::vector<float> skimmed_distribution, full_distribution;
    for (int draw = 0; draw < 3; ++draw) {
      const TokenId a = skimming.Sample(logits, history, nullptr, &skimmed_distribution);
      const TokenId b = full.Sample(logits, history, nullptr, &full_distribution, everything);
      ASSERT_EQ(a, b) << "trial " << trial << " draw " << draw;
      ASSERT_EQ(skimmed_distribution, full_distribution) << "trial " << trial << " draw " << draw;
    }
  }
}

// The distribution the stages give without top-k, sorting with a comparison
// as the sampler does for a few candidates: the reference for its sort by
// keys, which takes over for many.
std::vector<float> ComparisonSortedDistribution(const std::vector<float>& logits, const SamplingParams& params) {
  struct Scored {
    size_t id;
    float logit;
    float p;
  };
  std::vector<Scored> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({i, logits[i] / params.temperature, 0.0f});
  std::sort(c.begin(), c.end(), [](const Scored& a, const Scored& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  double sum = 0.0;
  for (Scored& s : c) {
    s.p = std::exp(s.logit - c.front().logit);
    sum += s.p;
  }
  for (Scored& s : c) s.p = static_cast<float>(s.p / sum);
  double cumulative = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    cumulative += c[i].p;
    if (params.top_p < 1.0f && cumulative >= params.top_p) {
      c.resize(i + 1);
      break;
    }
  }
  size_t keep = 1;
  while (params.min_p > 0.0f && keep < c.size() && c[keep].p >= params.min_p * c.front().p) ++keep;
  if (params.min_p > 0.0f) c.resize(keep);
  double total = 0.0;
  for (const Scored& s : c) total += s.p;
  std::vector<float> distribution(logits.size(), 0.0f);
  for (const Scored& s : c) distribution[s.id] = static_cast<float>(s.p / total);
  return distribution;
}

// Without top-k, thousands of candidates are sorted by their logits' bits:
// the same order as the comparison, ties (and -0 against +0) by id, so the
// same distribution to the bit.
TEST(Sampler, ManyCandidatesSortAsTheComparisonSortsThem) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(-300, 300);
  for (const size_t n : {1025u, 5000u, 49152u}) {
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<float> logits(n);
      for (float& l : logits) l = 0.01f * static_cast<float>(level(rng));
      for (size_t i = 0; i < n; i += 97) logits[i] = i % 2 ? -0.0f : 0.0f;
      SamplingParams params = Plain(0.7f + 0.1f * static_cast<float>(trial), 3);
      params.top_p = trial % 2 ? 0.9f : 1.0f;
      params.min_p = trial < 2 ? 0.0f : 0.01f;
      Sampler sampler(params);
      std::vector<float> distribution;
      sampler.Sample(logits, {}, nullptr, &distribution);
      EXPECT_EQ(distribution, ComparisonSortedDistribution(logits, params)) << n << " logits, trial " << trial;
    }
  }
  // Only zeros of both signs, and top-p cutting through them: the first half by id stays.
  std::vector<float> zeros(2000);
  for (size_t i = 0; i < zeros.size(); ++i) zeros[i] = i % 2 ? -0.0f : 0.0f;
  SamplingParams half = Plain(1.0f);
  half.top_p = 0.5f;
  Sampler sampler(half);
  std::vector<float> distribution;
  sampler.Sample(zeros, {}, nullptr, &distribution);
  EXPECT_EQ(distribution, ComparisonSortedDistribution(zeros, half));
  EXPECT_GT(distribution[1], 0.0f);
  EXPECT_EQ(distribution[1999], 0.0f);
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

// The speculative-sampling rule: whatever the draft's distribution q, the
// tokens that come out follow the sampler's own p.
TEST(Sampler, TheDraftRuleKeepsTheDistribution) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};  // p = 0.1, 0.2, 0.7
  const std::vector<std::vector<float>> drafts = {{0.6f, 0.3f, 0.1f}, {0.1f, 0.2f, 0.7f}, {}};
  for (const std::vector<float>& q : drafts) {
    Sampler s(Plain(1.0f, 11));
    std::mt19937_64 draft_rng(5);
    std::discrete_distribution<int> draw_q(q.begin(), q.end());
    std::map<TokenId, int> counts;
    int accepted = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      // An empty q: a certain draft (prompt lookup), always token 0.
      const DraftToken draft{q.empty() ? 0 : draw_q(draft_rng), q};
      const TokenId got = s.Sample(logits, {}, &draft);
      ++counts[got];
      accepted += got == draft.id;
    }
    EXPECT_NEAR(counts[0] / static_cast<double>(n), 0.1, 0.015) << q.size();
    EXPECT_NEAR(counts[1] / static_cast<double>(n), 0.2, 0.015);
    EXPECT_NEAR(counts[2] / static_cast<double>(n), 0.7, 0.015);
    // Acceptance is Σ min(p, q): 0.1 + 0.2 + 0.1 = 0.4; 1 when q = p; p(0) = 0.1 for the certain draft.
    const double expected = q.empty() ? 0.1 : q[0] == 0.1f ? 1.0 : 0.4;
    EXPECT_NEAR(accepted / static_cast<double>(n), expected, 0.015);
  }
}

TEST(Sampler, ReportsTheDistributionItDrewFrom) {
  const std::vector<float> logits = {0.0f, std::log(3.0f), -50.0f};
  std::vector<float> distribution;
  Sampler sampled(Plain(1.0f));
  sampled.Sample(logits, {}, nullptr, &distribution);
  ASSERT_EQ(distribution.size(), 3u);
  EXPECT_NEAR(distribution[0], 0.25, 1e-6);
  EXPECT_NEAR(distribution[1], 0.75, 1e-6);
  EXPECT_NEAR(distribution[2], 0.0, 1e-6);
  Sampler greedy(Plain(0.0f));
  EXPECT_EQ(greedy.Sample(logits, {}, nullptr, &distribution), 1);
  EXPECT_EQ(distribution, (std::vector<float>{0.0f, 1.0f, 0.0f}));
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
