#include "daemon/engine/draft_length.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace edgellm::engine
