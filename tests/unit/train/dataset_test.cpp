#include "daemon/train/dataset.h"

#include <gtest/gtest.h>

#include "daemon/engine/llama_model.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::train {
namespace {

using engine::TokenId;

const engine::Tokenizer& SpmTokenizer() {
  static std::unique_ptr<engine::LlamaModel> model = [] {
    auto m = engine::LlamaModel::Load(edgellm::testing::SyntheticModel("test-spm", engine::GgmlType::kF32), {});
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  }();
  return model->tokenizer();
}

DatasetOptions NoHoldOut(int32_t max_length = 256) {
  DatasetOptions options;
  options.max_length = max_length;
  options.eval_fraction = 0.0;
  return options;
}

TEST(Dataset, AMalformedLineIsReportedWithItsNumberAndSkipped) {
  const std::string text =
      "{\"text\": \"one two\"}\n"
      "\n"
      "{not json\n"
      "[1, 2]\n"
      "{\"prompt\": \"a\"}\n"
      "{\"text\": \"\"}\n"
      "{\"text\": 5}\n"
      "{\"prompt\": \"a b\", \"completion\": \"\"}\n"
      "{\"text\": \"x\", \"prompt\": \"y\", \"completion\": \"z\"}\n"
      "{\"prompt\": \"three\", \"completion\": \" four\"}";
  auto data = ParseJsonlDataset(text, SpmTokenizer(), NoHoldOut());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->examples, 2);
  const std::vector<std::pair<int64_t, std::string>> expected = {
      {3, "not valid JSON"},       {4, "not a JSON object"},
      {5, "expected {\"text\": string} or {\"prompt\": string, \"completion\": string}"},
      {6, "the text is empty"},    {7, "expected {\"text\": string} or {\"prompt\": string, \"completion\": string}"},
      {8, "the completion adds no tokens"},
      {9, "expected {\"text\": string} or {\"prompt\": string, \"completion\": string}"}};
  ASSERT_EQ(data->problems.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(data->problems[i].line, expected[i].first);
    EXPECT_EQ(data->problems[i].reason, expected[i].second);
  }
  const absl::Status none = ParseJsonlDataset("{oops\n", SpmTokenizer(), NoHoldOut()).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.message().find("none of 1 lines is a usable example (line 1: not valid JSON)"), std::string::npos)
      << none;
}

// A prompt/completion example learns only the completion and the end of text.
TEST(Dataset, OnlyTheCompletionIsLearned) {
  const engine::Tokenizer& tok = SpmTokenizer();
  auto data = ParseJsonlDataset("{\"prompt\": \"hello there\", \"completion\": \" general kenobi\"}", tok, NoHoldOut());
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->train.size(), 1u);
  const PackedRow& row = data->train[0];
  std::vector<TokenId> whole = tok.Encode("hello there general kenobi", true, false);
  whole.push_back(tok.eos_id());
  const size_t prompt_tokens = tok.Encode("hello there", true, false).size();
  EXPECT_EQ(row.tokens, whole);
  for (size_t i = 0; i < row.tokens.size(); ++i) {
    const bool learned = i + 1 >= prompt_tokens && i + 1 < whole.size();
    EXPECT_EQ(row.labels[i], learned ? whole[i + 1] : -1) << i;
    EXPECT_EQ(row.positions[i], static_cast<int32_t>(i));
  }
  EXPECT_EQ(row.loss_tokens(), static_cast<int64_t>(whole.size() - prompt_tokens));
}

// Examples share rows without crossing: segments and positions restart, and
// the last token of an example predicts nothing of the next. A long example
// is cut into rows of max_length.
TEST(Dataset, PacksExamplesIntoRowsAndCutsLongOnes) {
  const engine::Tokenizer& tok = SpmTokenizer();
  std::string text;
  for (int i = 0; i < 10; ++i) text += "{\"text\": \"the cat sat on the mat\"}\n";
  text += "{\"text\": \"" + std::string(300, 'a') + "\"}\n";
  const int32_t max_length = 32;
  auto data = ParseJsonlDataset(text, tok, NoHoldOut(max_length));
  ASSERT_TRUE(data.ok()) << data.status();
  int64_t tokens = 0, learned = 0;
  for (const PackedRow& row : data->train) {
    ASSERT_LE(row.tokens.size(), static_cast<size_t>(max_length));
    for (size_t i = 0; i < row.tokens.size(); ++i) {
      if (i > 0 && row.segments[i] != row.segments[i - 1]) {
        EXPECT_EQ(row.segments[i], row.segments[i - 1] + 1);
        EXPECT_EQ(row.positions[i], 0);
        EXPECT_EQ(row.labels[i - 1], -1) << "an example's last token predicts nothing";
      }
    }
    tokens += static_cast<int64_t>(row.tokens.size());
    learned += row.loss_tokens();
  }
  const int64_t short_tokens = static_cast<int64_t>(tok.Encode("the cat sat on the mat", true, false).size()) + 1;
  const int64_t long_tokens = static_cast<int64_t>(tok.Encode(std::string(300, 'a'), true, false).size()) + 1;
  EXPECT_EQ(tokens, 10 * short_tokens + long_tokens);
  const int64_t long_pieces = (long_tokens + max_length - 1) / max_length;
  EXPECT_EQ(learned, 10 * (short_tokens - 1) + long_tokens - long_pieces);
  EXPECT_LT(data->train.size(), static_cast<size_t>(10 + long_pieces)) << "short examples share rows";
}

TEST(Dataset, TheSplitAndOrderFollowTheSeed) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "{\"text\": \"story number " + std::to_string(i) + "\"}\n";
  DatasetOptions options;
  options.max_length = 16;
  options.eval_fraction = 0.25;
  options.seed = 7;
  auto a = ParseJsonlDataset(text, SpmTokenizer(), options);
  auto b = ParseJsonlDataset(text, SpmTokenizer(), options);
  options.seed = 8;
  auto c = ParseJsonlDataset(text, SpmTokenizer(), options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->eval.size(), 10u) << "one example per row at this length";
  EXPECT_EQ(a->train.size(), 30u);
  EXPECT_EQ(a->eval[0].tokens, b->eval[0].tokens);
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_NE(a->fingerprint, c->fingerprint);
  bool differs = false;
  for (size_t i = 0; i < a->eval.size(); ++i) differs = differs || a->eval[i].tokens != c->eval[i].tokens;
  EXPECT_TRUE(differs) << "another seed holds out other examples";
}

}  // namespace
}  // namespace edgellm::train
