#include "daemon/engine/token_logprobs.h"

#include <gtest/gtest.h>

#include <cmath>

#include "daemon/engine/generation_state.h"
#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

TEST(TokenLogprobs, AreTheLogSoftmaxOfTheLogits) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 200.0f - 197.5f};
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  const TokenLogprobs l = ComputeLogprobs(logits, 4, 3);
  EXPECT_EQ(l.chosen.id, 4);
  EXPECT_NEAR(l.chosen.logprob, 0.5 - std::log(sum), 1e-6);
  ASSERT_EQ(l.top.size(), 3u);
  // Likeliest first; equal logits by lower id.
  EXPECT_EQ(l.top[0].id, 1);
  EXPECT_EQ(l.top[1].id, 3);
  EXPECT_EQ(l.top[2].id, 5);
  EXPECT_NEAR(l.top[0].logprob, 3.0 - std::log(sum), 1e-6);
  EXPECT_EQ(l.top[0].logprob, l.top[1].logprob);
}

TEST(TokenLogprobs, StayFiniteForHugeLogitsAndClampTheCount) {
  std::vector<float> logits(1000, -1e30f);
  logits[7] = 1e30f;
  logits[8] = 1e30f - 1e24f;
  const TokenLogprobs l = ComputeLogprobs(logits, 7, 500);
  EXPECT_EQ(l.top.size(), static_cast<size_t>(kMaxTopLogprobs));
  EXPECT_TRUE(std::isfinite(l.chosen.logprob));
  EXPECT_LE(l.chosen.logprob, 0.0f);
  EXPECT_EQ(ComputeLogprobs({0.0f, 1.0f}, 0, 20).top.size(), 2u);
  EXPECT_TRUE(ComputeLogprobs(logits, 7, 0).top.empty());
}

TEST(TokenLogprobs, AGenerationReportsOnePerTokenAndValidatesTheCount) {
  Vocab v = SpmBaseVocab();
  for (const char* piece : {"a", "b"}) {
    v.tokens.push_back(piece);
    v.kinds.push_back(TokenKind::kNormal);
    v.scores.push_back(-1.0f);
  }
  auto tokenizer = Tokenizer::FromVocab(v);
  ASSERT_TRUE(tokenizer.ok());
  GenerateOptions options;
  options.max_tokens = 4;
  options.sampling.temperature = 0.0f;
  options.top_logprobs = 2;
  GenerationState state(**tokenizer, {1}, options, 100);
  std::vector<float> logits((*tokenizer)->vocab_size(), 0.0f);
  logits[(*tokenizer)->vocab_size() - 1] = 5.0f;
  const GenerationState::Step step = state.Advance(logits);
  ASSERT_EQ(step.logprobs.size(), 1u);
  EXPECT_EQ(step.logprobs[0].chosen.id, step.token);
  EXPECT_EQ(step.logprobs[0].top[0].id, step.token);
  EXPECT_EQ(step.logprobs[0].top.size(), 2u);
  options.top_logprobs = 21;
  const absl::Status s = ValidateGeneration(std::vector<TokenId>{1}, options, 100);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("top_logprobs 21"), absl::string_view::npos);
}

}  // namespace
}  // namespace edgellm::engine
