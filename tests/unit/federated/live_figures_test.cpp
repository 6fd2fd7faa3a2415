#include "federated/release/live_figures.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "federated/release/evaluation_proto.h"

namespace edgellm::release {
namespace {

// A tally whose TTFT histogram (bounds 0.1, 0.2, 0.4 s) holds `counts` per bucket, +Inf last.
ServingTally Tally(uint64_t requests, uint64_t errors, uint64_t refusals, std::vector<uint64_t> counts) {
  ServingTally t{requests, errors, refusals, {0.1, 0.2, 0.4}, {}};
  uint64_t running = 0;
  for (uint64_t c : counts) t.ttft_cumulative.push_back(running += c);
  return t;
}

LiveFigures Window(int64_t requests, int64_t errors, int64_t refusals, int64_t ttft_samples, double p99) {
  LiveFigures f;
  f.requests = requests;
  f.errors = errors;
  f.refusals = refusals;
  f.ttft_samples = ttft_samples;
  f.ttft_p99_s = p99;
  return f;
}

TEST(LiveFigures, AWindowCountsOnlyWhatHappenedInItAndItsP99IsInterpolatedInItsBucket) {
  const ServingTally before = Tally(10, 1, 2, {5, 0, 0, 0});
  // Since then: 100 more requests, 3 errors, 4 refusals; 100 first tokens,
  // 50 under 0.1 s and 50 between 0.2 s and 0.4 s.
  const ServingTally after = Tally(110, 4, 6, {55, 0, 50, 0});
  const LiveFigures f = Between(before, after, 12.5);
  EXPECT_EQ(f.requests, 100);
  EXPECT_EQ(f.errors, 3);
  EXPECT_EQ(f.refusals, 4);
  EXPECT_EQ(f.ttft_samples, 100);
  EXPECT_DOUBLE_EQ(f.seconds, 12.5);
  // Rank 99 of 100 lies 49/50 of the way through the (0.2, 0.4] bucket.
  EXPECT_NEAR(f.ttft_p99_s, 0.2 + 0.2 * 49.0 / 50.0, 1e-12);
  EXPECT_DOUBLE_EQ(f.error_rate(), 0.03);
  // In the +Inf bucket the p99 is the highest finite bound.
  EXPECT_DOUBLE_EQ(Between(before, Tally(20, 1, 2, {5, 0, 0, 10}), 1).ttft_p99_s, 0.4);
  // No first tokens: no p99.
  EXPECT_EQ(Between(before, Tally(20, 1, 2, {5, 0, 0, 0}), 1).ttft_p99_s, 0.0);
}

TEST(LiveFigures, CountersThatWentBackwardGiveAnEmptyWindowNotAHugeOne) {
  const LiveFigures f = Between(Tally(50, 5, 5, {9, 0, 0, 0}), Tally(10, 1, 1, {2, 0, 0, 0}), 1);
  EXPECT_EQ(f.requests, 0);
  EXPECT_EQ(f.errors, 0);
  EXPECT_EQ(f.ttft_samples, 0);
}

TEST(JudgeLive, MoreErrorsRefusalsOrSlowerFirstTokensThanAllowedFailWithTheFigures) {
  LiveThresholds t;  // 20 requests, +2 points of errors, +10 points of refusals, x2 p99
  const LiveFigures calm = Window(40, 0, 0, 40, 0.05);
  EXPECT_TRUE(JudgeLive(t, {calm, calm}).ok());
  const absl::Status errors = JudgeLive(t, {Window(40, 2, 0, 38, 0.05), calm});
  EXPECT_TRUE(absl::IsFailedPrecondition(errors));
  EXPECT_NE(errors.message().find("errors on 5.0% of 40 requests"), std::string::npos) << errors;
  const absl::Status refusals = JudgeLive(t, {Window(40, 0, 30, 10, 0.05), calm});
  EXPECT_NE(refusals.message().find("refusals of 75.0%"), std::string::npos) << refusals;
  const absl::Status slow = JudgeLive(t, {Window(40, 0, 0, 40, 0.3), calm});
  EXPECT_NE(slow.message().find("time to first token p99 300 ms since the swap vs 50 ms"), std::string::npos) << slow;
  // Within the allowance of the baseline's own rates.
  EXPECT_TRUE(JudgeLive(t, {Window(50, 5, 0, 45, 0.05), Window(40, 4, 0, 36, 0.05)}).ok());
  // Too few requests since the swap to judge: OK, whatever they did.
  EXPECT_TRUE(JudgeLive(t, {Window(19, 19, 0, 0, 0), calm}).ok());
  // A baseline too small to judge counts as none of either: the new version is held to the allowance alone.
  EXPECT_FALSE(JudgeLive(t, {Window(40, 2, 0, 38, 0.05), Window(5, 5, 0, 0, 0)}).ok());
  // Nor is the p99 judged without enough first tokens on both sides.
  EXPECT_TRUE(JudgeLive(t, {Window(40, 0, 0, 40, 0.3), Window(40, 0, 0, 10, 0.05)}).ok());
  t.max_ttft_p99_ratio = 0;
  EXPECT_TRUE(JudgeLive(t, {Window(40, 0, 0, 40, 0.3), calm}).ok());
  // A time that is not finite is never a pass.
  EXPECT_FALSE(JudgeLive(t, {Window(40, 0, 0, 40, std::numeric_limits<double>::quiet_NaN()), calm}).ok());
}

TEST(LiveReport, ItsJsonRoundTripsAndMalformedFiguresAreRefused) {
  LiveReport report{Window(24, 1, 21, 3, 0.125), Window(12, 0, 0, 12, 0.0625)};
  report.live.seconds = 3.5;
  absl::StatusOr<LiveReport> back = LiveReport::FromJson(report.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->live.refusals, 21);
  EXPECT_EQ(back->baseline.requests, 12);
  EXPECT_DOUBLE_EQ(back->live.ttft_p99_s, 0.125);
  EXPECT_DOUBLE_EQ(back->live.seconds, 3.5);
  EXPECT_EQ(DescribeLive(report),
            "24 requests since the swap: errors 4.2% vs 0.0%, refusals 87.5% vs 0.0%, TTFT p99 125 ms vs 62 ms "
            "(12 requests before)");
  EXPECT_FALSE(LiveReport::FromJson("").ok());
  EXPECT_FALSE(LiveReport::FromJson(R"({"live": {}})").ok());
  EXPECT_FALSE(LiveReport::FromJson(R"({"live": {"requests": -1}, "baseline": {}})").ok());
  EXPECT_FALSE(LiveReport::FromJson(R"({"live": {"ttft_p99_s": "slow"}, "baseline": {}})").ok());
  EXPECT_FALSE(LiveReport::FromJson(R"({"live": {"seconds": -2}, "baseline": {}})").ok());
}

TEST(LiveReport, ProtoCountsBeyondInt64AreClampedNotWrapped) {
  v1::LiveFigures proto;
  proto.set_requests(std::numeric_limits<uint64_t>::max());
  proto.set_errors(7);
  const LiveFigures f = FromProto(proto);
  EXPECT_EQ(f.requests, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(f.errors, 7);
}

}  // namespace
}  // namespace edgellm::release
