#include "daemon/engine/prompt_lookup.h"

#include <gtest/gtest.h>

namespace edgellm::engine {
namespace {

using Tokens = std::vector<TokenId>;

TEST(PromptLookup, DraftsWhatFollowedTheMostRecentEarlierOccurrence) {
  // "1 2 3" occurred twice before; the later one was followed by 7 8.
  const Tokens history = {1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 6, 1, 2, 3};
  EXPECT_EQ(PromptLookupDraft(history, 2), (Tokens{7, 8}));
  EXPECT_EQ(PromptLookupDraft(history, 5), (Tokens{7, 8, 6, 1, 2}));
}

TEST(PromptLookup, FallsBackToShorterSuffixes) {
  // "5 9" never occurred before, but "9" did.
  EXPECT_EQ(PromptLookupDraft(Tokens{9, 4, 4, 5, 9}, 3), (Tokens{4, 4, 5}));
}

TEST(PromptLookup, DraftsNothingWithoutARepeat) {
  EXPECT_TRUE(PromptLookupDraft(Tokens{1, 2, 3, 4}, 4).empty());
  EXPECT_TRUE(PromptLookupDraft(Tokens{1}, 4).empty());
  EXPECT_TRUE(PromptLookupDraft(Tokens{}, 4).empty());
  EXPECT_TRUE(PromptLookupDraft(Tokens{1, 1}, 0).empty());
}

TEST(PromptLookup, AnOverlappingRepeatCountsToo) {
  // The suffix "1 1" also starts one token earlier, overlapping itself.
  EXPECT_EQ(PromptLookupDraft(Tokens{1, 1, 1}, 4), (Tokens{1}));
}

}  // namespace
}  // namespace edgellm::engine
