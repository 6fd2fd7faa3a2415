#include "daemon/engine/draft_length.h"

#include <gtest/gtest.h>

#include "daemon/engine/llama_model.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::engine {
namespace {

TEST(DraftLength, GrowsWhileDraftsStandAndShrinksToWhatStood) {
  DraftLength length(8);
  EXPECT_EQ(length.Next(), 8);
  length.Update(8, 3);
  EXPECT_EQ(length.Next(), 4);
  length.Update(4, 4);
  EXPECT_EQ(length.Next(), 6);
  length.Update(6, 6);
  length.Update(8, 8);
  EXPECT_EQ(length.Next(), 8);  // never past the maximum
  length.Update(0, 0);          // a step with nothing drafted changes nothing
  EXPECT_EQ(length.Next(), 8);
}

TEST(DraftLength, PausesLongerAfterEachStepThatKeptNothing) {
  DraftLength length(6);
  auto steps_without_drafts = [&] {
    int paused = 0;
    while (length.Next() == 0) ++paused;
    return paused;
  };
  length.Update(6, 0);
  EXPECT_EQ(steps_without_drafts(), 1);  // the Next() that ended the loop returned 1
  length.Update(1, 0);
  EXPECT_EQ(steps_without_drafts(), 2);
  length.Update(1, 0);
  EXPECT_EQ(steps_without_drafts(), 4);
  for (int i = 0; i < 10; ++i) {
    length.Update(1, 0);
    steps_without_drafts();
  }
  length.Update(1, 0);
  EXPECT_EQ(steps_without_drafts(), 32);
  // A draft that stands ends the backoff.
  length.Update(1, 1);
  EXPECT_EQ(length.Next(), 3);
  length.Update(3, 0);
  EXPECT_EQ(steps_without_drafts(), 1);
}

TEST(DraftLength, ZeroMeansNeverDraft) {
  DraftLength length(0);
  EXPECT_EQ(length.Next(), 0);
  length.Update(1, 1);
  EXPECT_EQ(length.Next(), 0);
}

// Checking a row costs 0.4 of a step: drafts pay while they stand, stop (but
// for a probe now and again) once none do, and resume when probes stand.
TEST(DraftLength, DraftsOnlyWhileTheyPayForTheirRows) {
  DraftLength length(6, /*row_cost=*/0.4);
  for (int step = 0; step < 20; ++step) {
    const int32_t k = length.Next();
    ASSERT_GT(k, 0) << step;
    length.Update(k, k);  // every draft stands
  }
  EXPECT_EQ(length.Next(), 6);  // all stand: as long as allowed
  int drafted_steps = 0;
  for (int step = 0; step < 60; ++step) {
    const int32_t k = length.Next();
    if (k > 0) ++drafted_steps;
    length.Update(k, 0);  // nothing stands any more
  }
  EXPECT_LT(drafted_steps, 10);
  // Probes find drafts standing again, and drafting resumes.
  int resumed = 0;
  for (int step = 0; step < 80; ++step) {
    const int32_t k = length.Next();
    if (k > 0) ++resumed;
    length.Update(k, k);
  }
  EXPECT_GT(resumed, 40);
}

TEST(DraftLength, FreeRowsLeaveAcceptanceAloneToDecide) {
  DraftLength free_rows(4, 0.0), costly(4, 1.5);
  EXPECT_EQ(free_rows.Next(), 4);
  EXPECT_EQ(costly.Next(), 0);  // a row costs more than the token it could save: never worth it
}

TEST(DraftLength, TheRowCostIsWhatEachExtraRowAddsToAStep) {
  EXPECT_DOUBLE_EQ(RowCostFrom(0.010, 0.030, 5), 0.5);  // four extra rows add two steps
  EXPECT_DOUBLE_EQ(RowCostFrom(0.010, 0.010, 5), 0.0);  // rows for free
  EXPECT_DOUBLE_EQ(RowCostFrom(0.010, 0.009, 5), 0.0);  // noise below free
  EXPECT_DOUBLE_EQ(RowCostFrom(0.010, 0.200, 5), 2.0);  // clamped
  EXPECT_DOUBLE_EQ(RowCostFrom(0.0, 0.030, 5), 0.0);    // a failed timing
  EXPECT_DOUBLE_EQ(RowCostFrom(0.010, 0.030, 1), 0.0);  // no extra rows to judge by
}

TEST(DraftLength, TheMeasuredRowCostIsAShareOfAStep) {
  auto model = LlamaModel::Load(edgellm::testing::SyntheticModel("test-spm", GgmlType::kQ8_0), {});
  ASSERT_TRUE(model.ok()) << model.status();
  const double cost = MeasureRowCost(**model);
  EXPECT_GE(cost, 0.0);
  EXPECT_LE(cost, 2.0);
}

TEST(DraftLength, AProbeRunsItsForwardsOneAtATime) {
  auto model = LlamaModel::Load(edgellm::testing::SyntheticModel("test-spm", GgmlType::kQ8_0), {});
  ASSERT_TRUE(model.ok()) << model.status();
  RowCostProbe probe(**model);
  int forwards = 0;
  while (!probe.done()) {
    EXPECT_EQ(probe.row_cost(), 0.0) << "a row cost before the last forward";
    probe.RunNext();
    ++forwards;
    ASSERT_LE(forwards, 100);
  }
  // A prefix, then a warm-up and three timed runs of one row and of five.
  EXPECT_EQ(forwards, 9);
  EXPECT_GE(probe.row_cost(), 0.0);
  EXPECT_LE(probe.row_cost(), 2.0);
  EXPECT_TRUE(probe.RunNext()) << "a finished probe stays finished";
}

TEST(DraftLength, ARowCostLearntLaterCapsTheLength) {
  // Rows that cost a whole step each never pay at the prior's 50% acceptance.
  DraftLength free_rows(8);
  DraftLength priced(8);
  priced.SetRowCost(1.0);
  EXPECT_EQ(free_rows.Next(), 8);
  EXPECT_EQ(priced.Next(), 0);
}

}  // namespace
}  // namespace edgellm::engine
