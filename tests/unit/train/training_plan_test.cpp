#include <gtest/gtest.h>

#include "daemon/train/trainer.h"

namespace edgellm::train {
namespace {

// The smol-135m shape.
engine::LlamaConfig Smol() {
  engine::LlamaConfig c;
  c.n_layer = 30;
  c.n_embd = 576;
  c.n_head = 9;
  c.n_head_kv = 3;
  c.head_dim = 64;
  c.n_ff = 1536;
  c.n_vocab = 49152;
  c.rope_dims = 64;
  return c;
}

TrainerOptions Asked(int64_t budget_mib) {
  TrainerOptions options;
  options.micro_batch = 4;
  options.grad_accumulation = 2;
  options.max_length = 256;
  options.memory_budget_mib = budget_mib;
  return options;
}

TEST(TrainingPlan, KeepsWhatWasAskedWithoutABudget) {
  auto plan = PlanTraining(Smol(), Asked(0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->micro_batch, 4);
  EXPECT_EQ(plan->grad_accumulation, 2);
  EXPECT_EQ(plan->max_length, 256);
  EXPECT_FALSE(plan->recompute_layers);
  EXPECT_EQ(plan->estimated_bytes, EstimateStepBytes(Smol(), TrainerOptions().lora, 4, 256, false));
}

// Under a budget: recompute layers first, then smaller micro-batches with
// more accumulation (the effective batch stays), then shorter rows.
TEST(TrainingPlan, ShrinksToFitABudgetInTheCheapestOrder) {
  const engine::LoraConfig lora;
  const uint64_t kept = EstimateStepBytes(Smol(), lora, 4, 256, false);
  const uint64_t recomputed = EstimateStepBytes(Smol(), lora, 4, 256, true);
  ASSERT_LT(recomputed, kept);

  auto roomy = PlanTraining(Smol(), Asked(static_cast<int64_t>(kept >> 20) + 1));
  ASSERT_TRUE(roomy.ok());
  EXPECT_FALSE(roomy->recompute_layers);
  EXPECT_EQ(roomy->micro_batch, 4);

  auto tighter = PlanTraining(Smol(), Asked(static_cast<int64_t>(recomputed >> 20) + 1));
  ASSERT_TRUE(tighter.ok());
  EXPECT_TRUE(tighter->recompute_layers);
  EXPECT_EQ(tighter->micro_batch, 4);
  EXPECT_LE(tighter->estimated_bytes, recomputed);

  const uint64_t half = EstimateStepBytes(Smol(), lora, 2, 256, true);
  auto smaller = PlanTraining(Smol(), Asked(static_cast<int64_t>(half >> 20) + 1));
  ASSERT_TRUE(smaller.ok());
  EXPECT_EQ(smaller->micro_batch, 2);
  EXPECT_EQ(smaller->grad_accumulation, 4) << "the effective batch of 8 rows stays";
  EXPECT_EQ(smaller->max_length, 256);
  EXPECT_NE(smaller->Describe().find("chosen to fit the budget"), std::string::npos) << smaller->Describe();

  const uint64_t short_rows = EstimateStepBytes(Smol(), lora, 1, 128, true);
  auto shorter = PlanTraining(Smol(), Asked(static_cast<int64_t>(short_rows >> 20) + 1));
  ASSERT_TRUE(shorter.ok());
  EXPECT_EQ(shorter->max_length, 128);

  const absl::Status none = PlanTraining(Smol(), Asked(1)).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(none.message().find("not even one row of 32 tokens fits the memory budget of 1 MiB"), std::string::npos)
      << none;
}

TEST(TrainingPlan, BadOptionsAreRefused) {
  TrainerOptions options = Asked(0);
  options.steps = 0;
  EXPECT_EQ(PlanTraining(Smol(), options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Asked(0);
  options.max_length = 8;
  EXPECT_EQ(PlanTraining(Smol(), options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Asked(0);
  options.learning_rate = -1;
  EXPECT_EQ(PlanTraining(Smol(), options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgellm::train
