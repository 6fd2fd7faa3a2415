#include "daemon/train/held_out_set.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/support/model_fixtures.h"

namespace edgellm::train {
namespace {

// The reference: one forward with every position's logits, then each
// labelled row's log-softmax in double.
double ReferenceLoss(const engine::LlamaModel& model, const HeldOutExample& example, int64_t* tokens) {
  auto cache = testing::NewCache(model, static_cast<int32_t>(example.tokens.size()));
  std::vector<float> logits;
  EXPECT_TRUE(model.Forward(example.tokens, cache.get(), true, &logits).ok());
  const size_t vocab = static_cast<size_t>(model.config().n_vocab);
  double total = 0.0;
  for (size_t i = 0; i < example.tokens.size(); ++i) {
    if (example.labels[i] < 0) continue;
    const float* row = logits.data() + i * vocab;
    double max = row[0];
    for (size_t v = 0; v < vocab; ++v) max = std::max(max, static_cast<double>(row[v]));
    double sum = 0.0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    total += max + std::log(sum) - row[example.labels[i]];
    ++*tokens;
  }
  return total;
}

TEST(HeldOutSet, AnExampleLongerThanAChunkHasTheLossOfOneWholeForward) {
  auto model = testing::LoadModel(testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  const int32_t vocab = model->config().n_vocab;
  HeldOutExample example;
  // 150 positions: three chunks, the last one short; a prompt with no
  // labels, then labelled rows across the chunk borders.
  for (int32_t i = 0; i < 150; ++i) {
    example.tokens.push_back((i * 7 + 3) % vocab);
    example.labels.push_back(i < 20 || i % 9 == 0 ? -1 : (i * 11 + 5) % vocab);
  }
  absl::StatusOr<LossSum> chunked = HeldOutSet::ExampleLoss(*model, example, nullptr);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  int64_t reference_tokens = 0;
  const double reference = ReferenceLoss(*model, example, &reference_tokens);
  EXPECT_EQ(chunked->tokens, reference_tokens);
  EXPECT_GT(chunked->tokens, 100);
  EXPECT_NEAR(chunked->total, reference, 1e-4 * std::abs(reference));
}

TEST(HeldOutSet, AnIdOutsideTheVocabularyIsAnErrorNotACrash) {
  auto model = testing::LoadModel(testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  HeldOutExample example;
  example.tokens = {1, 2, model->config().n_vocab + 5};
  example.labels = {2, 3, -1};
  absl::StatusOr<LossSum> loss = HeldOutSet::ExampleLoss(*model, example, nullptr);
  EXPECT_FALSE(loss.ok());
}

}  // namespace
}  // namespace edgellm::train
