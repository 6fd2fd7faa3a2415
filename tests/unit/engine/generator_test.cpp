#include "daemon/engine/generator.h"

#include <gtest/gtest.h>

#include "tests/support/model_fixtures.h"

namespace edgellm::engine {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelOptions options;
    options.threads = 2;
    auto m = LlamaModel::Load(edgellm::testing::SyntheticModel("test-spm", GgmlType::kF32), options);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }
  static GenerateOptions Greedy(int n) {
    GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0.0f;
    o.ignore_eos = true;
    return o;
  }
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(GeneratorTest, SpeculativeGreedyOutputEqualsPlainAndStopsWhereItDoes) {
  // A random model repeats itself soon: drafts are found and mostly accepted.
  for (int n : {1, 5, 40, 150}) {
    auto plain = Generate(*model_, "the cat sat on the mat and the cat", Greedy(n));
    GenerateOptions options = Greedy(n);
    options.draft_tokens = 4;
    std::string streamed;
    auto speculative = Generate(*model_, "the cat sat on the mat and the cat", options, [&](std::string_view t) {
      streamed += t;
      return true;
    });
    ASSERT_TRUE(plain.ok() && speculative.ok());
    EXPECT_EQ(speculative->token_ids, plain->token_ids) << n;
    EXPECT_EQ(speculative->text, plain->text);
    EXPECT_EQ(streamed, plain->text);
    EXPECT_EQ(speculative->finish_reason, FinishReason::kLength);
    EXPECT_LE(speculative->accepted_tokens, speculative->drafted_tokens);
  }
  GenerateOptions bad = Greedy(20);
  bad.draft_tokens = 65;
  EXPECT_EQ(Generate(*model_, "the cat", bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// A draft model with the target's own weights drafts from the very
// distribution the target samples: under the speculative-sampling rule its
// drafts all stand (up to rounding between the batched and single-token
// forwards), greedy or not, and greedy output equals plain greedy output.
TEST_F(GeneratorTest, ADraftModelThatAgreesHasItsDraftsAccepted) {
  for (float temperature : {0.0f, 0.9f}) {
    GenerateOptions options = Greedy(40);
    options.sampling.temperature = temperature;
    options.sampling.seed = 7;
    auto plain = Generate(*model_, "the cat sat", options);
    options.draft_tokens = 4;
    options.draft_model = model_.get();
    std::string streamed;
    auto speculative = Generate(*model_, "the cat sat", options, [&](std::string_view t) {
      streamed += t;
      return true;
    });
    ASSERT_TRUE(plain.ok() && speculative.ok()) << speculative.status();
    EXPECT_EQ(speculative->token_ids.size(), 40u);
    EXPECT_EQ(streamed, speculative->text);
    EXPECT_GT(speculative->drafted_tokens, 30);
    EXPECT_GE(speculative->accepted_tokens, speculative->drafted_tokens * 9 / 10) << temperature;
    EXPECT_LT(speculative->decode_steps, plain->decode_steps / 3);
    if (temperature == 0.0f) {
      EXPECT_EQ(speculative->token_ids, plain->token_ids);
    }
  }
}

TEST_F(GeneratorTest, ADraftModelWithAnotherVocabularyIsRefused) {
  auto other = LlamaModel::Load(edgellm::testing::SyntheticModel("test-bpe", GgmlType::kF32), ModelOptions{});
  ASSERT_TRUE(other.ok()) << other.status();
  GenerateOptions options = Greedy(5);
  options.draft_tokens = 4;
  options.draft_model = other->get();
  auto r = Generate(*model_, "the cat", options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("draft model"), std::string::npos) << r.status();
}

TEST_F(GeneratorTest, StopsAtMaxTokensAndReportsFigures) {
  auto r = Generate(*model_, "Once upon a time", Greedy(12));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->token_ids.size(), 12u);
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->decode_steps, 11);
  EXPECT_GT(r->prefill_tokens_per_second(), 0.0);
  EXPECT_GT(r->decode_tokens_per_second(), 0.0);
  EXPECT_EQ(r->text, model_->tokenizer().Decode(r->token_ids));
  EXPECT_EQ(r->prompt_ids, model_->tokenizer().Encode("Once upon a time"));
}

TEST_F(GeneratorTest, SameSeedSameOutput) {
  GenerateOptions o;
  o.max_tokens = 20;
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 0;
  o.sampling.seed = 1234;
  o.ignore_eos = true;
  auto a = Generate(*model_, "The robot", o);
  auto b = Generate(*model_, "The robot", o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->token_ids, b->token_ids);
  o.sampling.seed = 4321;
  auto c = Generate(*model_, "The robot", o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->token_ids, c->token_ids);
}

TEST_F(GeneratorTest, StreamedTextEqualsTheResult) {
  std::string streamed;
  auto r = Generate(*model_, "hello", Greedy(30), [&](std::string_view piece) {
    streamed.append(piece);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(streamed, r->text);
}

TEST_F(GeneratorTest, StopStringEndsTheTextBeforeIt) {
  auto full = Generate(*model_, "hello", Greedy(40));
  ASSERT_TRUE(full.ok());
  ASSERT_GE(full->text.size(), 12u);
  const std::string stop = full->text.substr(full->text.size() / 2, 3);
  GenerateOptions o = Greedy(40);
  o.stop = {stop};
  std::string streamed;
  auto r = Generate(*model_, "hello", o, [&](std::string_view piece) {
    streamed.append(piece);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kStop);
  EXPECT_EQ(r->text, full->text.substr(0, full->text.find(stop)));
  EXPECT_EQ(streamed, r->text);
  EXPECT_LT(r->token_ids.size(), full->token_ids.size());
}

TEST_F(GeneratorTest, ASinkThatReturnsFalseCancels) {
  int calls = 0;
  auto r = Generate(*model_, "hello", Greedy(50), [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(r->token_ids.size(), 50u);
}

TEST_F(GeneratorTest, RefusesBadRequests) {
  GenerateOptions o = Greedy(0);
  EXPECT_EQ(Generate(*model_, "x", o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Greedy(4);
  o.sampling.top_p = 2.0f;
  EXPECT_EQ(Generate(*model_, "x", o).status().code(), absl::StatusCode::kInvalidArgument);
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "robot ";
  absl::Status s = Generate(*model_, long_prompt, Greedy(4)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("context"), absl::string_view::npos) << s;
}

TEST_F(GeneratorTest, TheContextLimitEndsGenerationWithLength) {
  std::vector<TokenId> prompt(250, 300);
  auto r = GenerateFromTokens(*model_, prompt, Greedy(100));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->token_ids.size(), 7u);  // 250 + 6 cached steps fill 256, the 7th is sampled from them
}

}  // namespace
}  // namespace edgellm::engine
