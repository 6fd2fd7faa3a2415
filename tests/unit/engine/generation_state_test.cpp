#include "daemon/engine/generation_state.h"

#include <gtest/gtest.h>

#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

class GenerationStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Vocab v = SpmBaseVocab();
    for (const char* piece : {"\xe2\x96\x81" "hello", "\xe2\x96\x81" "world", "!"}) {
      v.tokens.push_back(piece);
      v.kinds.push_back(TokenKind::kNormal);
      v.scores.push_back(-1.0f);
    }
    tokenizer_ = std::move(*Tokenizer::FromVocab(v));
  }
  // Logits that make greedy sampling pick `id`.
  std::vector<float> Pick(TokenId id) const {
    std::vector<float> logits(tokenizer_->vocab_size(), 0.0f);
    logits[id] = 10.0f;
    return logits;
  }
  static GenerateOptions Greedy(int max_tokens) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0.0f;
    return o;
  }
  static constexpr TokenId kHello = 259, kWorld = 260, kBang = 261, kEos = 2;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(GenerationStateTest, StopsOnEosWithoutEmittingIt) {
  GenerationState state(*tokenizer_, {1}, Greedy(10), 100);
  GenerationState::Step step = state.Advance(Pick(kHello));
  EXPECT_EQ(step.token, kHello);
  EXPECT_EQ(step.text, " hello");
  EXPECT_FALSE(step.finished);
  step = state.Advance(Pick(kEos));
  EXPECT_TRUE(step.finished);
  EXPECT_EQ(step.finish_reason, FinishReason::kStop);
  EXPECT_EQ(step.token, -1);
  EXPECT_EQ(state.generated(), (std::vector<TokenId>{kHello}));
  EXPECT_EQ(state.text(), " hello");
}

TEST_F(GenerationStateTest, StopsAtMaxTokens) {
  GenerationState state(*tokenizer_, {1}, Greedy(2), 100);
  EXPECT_FALSE(state.Advance(Pick(kHello)).finished);
  const GenerationState::Step step = state.Advance(Pick(kWorld));
  EXPECT_TRUE(step.finished);
  EXPECT_EQ(step.finish_reason, FinishReason::kLength);
  EXPECT_EQ(state.text(), " hello world");
}

TEST_F(GenerationStateTest, StopsBeforeAStopString) {
  GenerateOptions o = Greedy(10);
  o.stop = {"world!"};
  GenerationState state(*tokenizer_, {1}, o, 100);
  EXPECT_EQ(state.Advance(Pick(kHello)).text, " hello");
  EXPECT_EQ(state.Advance(Pick(kWorld)).text, " ");  // "world" might begin the stop string
  const GenerationState::Step step = state.Advance(Pick(kBang));
  EXPECT_TRUE(step.finished);
  EXPECT_EQ(step.finish_reason, FinishReason::kStop);
  EXPECT_EQ(state.text(), " hello ");
}

TEST_F(GenerationStateTest, StopsWhenTheContextIsFull) {
  // 3 prompt tokens in a context of 5: the 3rd token would need position 5.
  GenerationState state(*tokenizer_, {1, kHello, kWorld}, Greedy(10), 5);
  EXPECT_FALSE(state.Advance(Pick(kBang)).finished);
  EXPECT_FALSE(state.Advance(Pick(kBang)).finished);
  const GenerationState::Step step = state.Advance(Pick(kBang));
  EXPECT_TRUE(step.finished);
  EXPECT_EQ(step.finish_reason, FinishReason::kLength);
}

TEST_F(GenerationStateTest, ValidationNamesTheProblem) {
  EXPECT_TRUE(ValidateGeneration(std::vector<TokenId>{1}, Greedy(4), 10).ok());
  EXPECT_NE(ValidateGeneration(std::vector<TokenId>{1}, Greedy(0), 10).message().find("max_tokens"),
            absl::string_view::npos);
  EXPECT_NE(ValidateGeneration({}, Greedy(4), 10).message().find("empty"), absl::string_view::npos);
  EXPECT_NE(ValidateGeneration(std::vector<TokenId>(10, 1), Greedy(4), 10).message().find("context holds 10"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace edgellm::engine
