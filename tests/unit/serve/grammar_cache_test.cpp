#include "daemon/serve/grammar_cache.h"

#include <gtest/gtest.h>

namespace edgellm::serve {
namespace {

// A vocabulary of the 256 bytes, counting how often it is built.
std::function<std::shared_ptr<const grammar::TokenTrie>()> Bytes(int* built = nullptr) {
  return [built] {
    if (built != nullptr) ++*built;
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    return std::make_shared<grammar::TokenTrie>(pieces, std::vector<int32_t>{});
  };
}

std::string Grammar(int n) { return "root ::= \"" + std::to_string(n) + "\" [a-z]*"; }

TEST(GrammarCache, TheSameGrammarGetsTheSameAutomatonUntilItIsTheLeastRecentlyUsed) {
  GrammarCacheConfig config;
  config.capacity = 3;
  int tries_built = 0;
  GrammarCache cache(Bytes(&tries_built), config);
  EXPECT_EQ(tries_built, 0) << "no grammar yet, no trie";
  auto first = cache.Get(Grammar(1)).value();
  EXPECT_EQ(cache.Get(Grammar(1)).value(), first);
  for (int n = 2; n <= 3; ++n) ASSERT_TRUE(cache.Get(Grammar(n)).ok());
  EXPECT_EQ(cache.Get(Grammar(1)).value(), first) << "used again: now the most recent";
  ASSERT_TRUE(cache.Get(Grammar(4)).ok());  // drops 2, the least recently used
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Get(Grammar(1)).value(), first);
  EXPECT_EQ(tries_built, 1) << "the trie is built once";
}

TEST(GrammarCache, TheKeptAutomataStayWithinTheirMemoryBudget) {
  GrammarCacheConfig config;
  config.max_bytes = 32 << 10;
  GrammarCache cache(Bytes(), config);
  for (int n = 0; n < 16; ++n) {
    auto automaton = cache.Get(Grammar(n)).value();
    // Each grows as a request runs: masks for a few states.
    grammar::StateId state = automaton->Start().value();
    for (char c : std::to_string(n) + "abcdefghij") {
      ASSERT_TRUE(automaton->Mask(state).ok());
      state = automaton->Advance(state, std::string(1, c)).value();
    }
  }
  EXPECT_LT(cache.size(), 16u) << "older automata were dropped to stay within the budget";
  EXPECT_GE(cache.size(), 1u);
  EXPECT_EQ(cache.Get("root ::= item").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgellm::serve
