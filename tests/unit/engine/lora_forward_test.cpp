// LoRA adapters at inference: applied unmerged in the fused pass (per batch
// item), in the LibTorch forward, and merged into a rewritten GGUF.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/model_rewrite.h"
#include "daemon/engine/torch_forward.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::LoadModel;
using edgellm::testing::NewCache;
using edgellm::testing::SyntheticModel;
using edgellm::testing::TestDir;

// An adapter on every projection whose B is random too, so it changes the
// output (a fresh adapter's B is zero).
LoraAdapter TrainedLookingAdapter(const LlamaConfig& model, uint64_t seed) {
  LoraConfig config;
  config.rank = 4;
  config.alpha = 8.0f;
  config.seed = seed;
  config.targets = AllLoraTargets();
  LoraAdapter adapter = *LoraAdapter::Create(config, model);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    for (LoraTarget t : config.targets) {
      for (float& v : adapter.Find(layer, t)->b) v = normal(rng);
    }
  }
  return adapter;
}

std::vector<TokenId> SomeTokens(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 53 + 7) % vocab);
  return t;
}

// Logits of every token of `tokens` through a fresh cache.
std::vector<float> AllLogits(const LlamaModel& model, const std::vector<TokenId>& tokens,
                             const LoraAdapter* adapter) {
  auto cache = NewCache(model);
  std::vector<float> logits;
  const absl::Status status = model.Forward(tokens, cache.get(), true, &logits, adapter);
  EXPECT_TRUE(status.ok()) << status;
  return logits;
}

float LargestDifference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

TEST(LoraForward, AFreshAdapterLeavesTheModelAsItWas) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kQ8_0));
  ASSERT_NE(model, nullptr);
  LoraConfig config;
  config.targets = {LoraTarget::kQ, LoraTarget::kV, LoraTarget::kDown};
  auto fresh = LoraAdapter::Create(config, model->config());
  ASSERT_TRUE(fresh.ok());
  const std::vector<TokenId> tokens = SomeTokens(12, model->config().n_vocab);
  EXPECT_EQ(AllLogits(*model, tokens, &*fresh), AllLogits(*model, tokens, nullptr));
}

// The fused pass with the adapter unmerged, the LibTorch forward with it
// unmerged, and the model with it merged into its F32 weights agree, for
// every family (Phi-3's adapter lands inside its fused q/k/v and gate/up
// matrices when merged).
TEST(LoraForward, UnmergedMatchesLibTorchAndTheMergedModel) {
  for (const char* shape : {"test-spm", "test-qwen2", "test-phi3", "test-gemma2"}) {
    SCOPED_TRACE(shape);
    const std::string path = SyntheticModel(shape, GgmlType::kF32);
    auto model = LoadModel(path);
    auto reference = LoadModel(path);
    ASSERT_NE(model, nullptr);
    ASSERT_TRUE(UseLibTorch(*reference, "cpu").ok());
    const LoraAdapter adapter = TrainedLookingAdapter(model->config(), 3);
    const std::vector<TokenId> tokens = SomeTokens(20, model->config().n_vocab);

    const std::vector<float> base = AllLogits(*model, tokens, nullptr);
    const std::vector<float> unmerged = AllLogits(*model, tokens, &adapter);
    EXPECT_GT(LargestDifference(base, unmerged), 0.05f) << "the adapter changes the output";
    EXPECT_LE(LargestDifference(unmerged, AllLogits(*reference, tokens, &adapter)), 1e-4f);

    const std::string merged_path = (TestDir() / "merged.gguf").string();
    ASSERT_TRUE(RewriteModel(model->gguf(), model->config(), {&adapter, std::nullopt, std::nullopt}, merged_path).ok());
    auto merged = LoadModel(merged_path);
    ASSERT_NE(merged, nullptr);
    EXPECT_EQ(merged->weight_type(), "F32");
    EXPECT_LE(LargestDifference(unmerged, AllLogits(*merged, tokens, nullptr)), 1e-4f);
  }
}

TEST(LoraForward, ABatchAppliesEachItemsOwnAdapter) {
  auto model = LoadModel(SyntheticModel("test-bpe", GgmlType::kQ8_0));
  ASSERT_NE(model, nullptr);
  const LoraAdapter x = TrainedLookingAdapter(model->config(), 5);
  const LoraAdapter y = TrainedLookingAdapter(model->config(), 6);
  const std::vector<TokenId> a = SomeTokens(7, model->config().n_vocab);
  const std::vector<TokenId> b = SomeTokens(5, model->config().n_vocab);
  const std::vector<TokenId> c = SomeTokens(9, model->config().n_vocab);
  auto ca = NewCache(*model), cb = NewCache(*model), cc = NewCache(*model);
  const std::vector<BatchItem> items = {{a, ca.get(), true, &x}, {b, cb.get(), true, nullptr}, {c, cc.get(), true, &y}};
  std::vector<float> batched;
  ASSERT_TRUE(model->ForwardBatch(items, &batched).ok());
  const int64_t vocab = model->config().n_vocab;
  std::vector<float> expected = AllLogits(*model, a, &x);
  const std::vector<float> alone_b = AllLogits(*model, b, nullptr);
  const std::vector<float> alone_c = AllLogits(*model, c, &y);
  expected.insert(expected.end(), alone_b.begin(), alone_b.end());
  expected.insert(expected.end(), alone_c.begin(), alone_c.end());
  ASSERT_EQ(batched.size(), static_cast<size_t>((7 + 5 + 9) * vocab));
  EXPECT_LE(LargestDifference(batched, expected), 1e-4f);
}

TEST(LoraForward, AnAdapterForAnotherShapeIsRefused) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  auto other = LoadModel(SyntheticModel("test-k", GgmlType::kF32));
  const LoraAdapter adapter = TrainedLookingAdapter(other->config(), 1);
  auto cache = NewCache(*model);
  std::vector<float> logits;
  const absl::Status status = model->Forward(SomeTokens(3, 384), cache.get(), false, &logits, &adapter);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("batch item 0: adapter's q_proj does not fit"), std::string::npos) << status;
  EXPECT_EQ(cache->length(), 0);
}

// Merging into a quantized base re-quantizes each merged weight to its type.
TEST(LoraForward, MergingIntoAQ8_0BaseKeepsItQ8_0) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kQ8_0));
  const LoraAdapter adapter = TrainedLookingAdapter(model->config(), 9);
  const std::string merged_path = (TestDir() / "merged-q8.gguf").string();
  ASSERT_TRUE(RewriteModel(model->gguf(), model->config(), {&adapter, std::nullopt, std::nullopt}, merged_path).ok());
  auto merged = LoadModel(merged_path);
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->gguf().FindTensor("blk.1.attn_q.weight")->type, GgmlType::kQ8_0);
  EXPECT_EQ(merged->gguf().FindTensor("blk.0.ffn_down.weight")->type, GgmlType::kQ8_0);
  const std::vector<TokenId> tokens = SomeTokens(10, model->config().n_vocab);
  const std::vector<float> unmerged = AllLogits(*model, tokens, &adapter);
  const std::vector<float> base = AllLogits(*model, tokens, nullptr);
  // Re-quantizing costs a little precision: the merged model is far closer
  // to the unmerged adapter than the base is.
  const float merge_error = LargestDifference(unmerged, AllLogits(*merged, tokens, nullptr));
  EXPECT_LT(merge_error, 0.1f * LargestDifference(unmerged, base));
}

// Quantizing converts every weight whose rows are whole blocks, and keeps the
// rest (stories260K's feed-forward of 172) as they were, as llama.cpp does.
TEST(LoraForward, QuantizingConvertsTheWeightsThatAreWholeBlocks) {
  auto model = LoadModel(SyntheticModel("stories260k", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  const std::string path = (TestDir() / "q8.gguf").string();
  ASSERT_TRUE(RewriteModel(model->gguf(), model->config(), {nullptr, GgmlType::kQ8_0, std::nullopt}, path).ok());
  auto quantized = LoadModel(path);
  ASSERT_NE(quantized, nullptr);
  EXPECT_EQ(quantized->weight_type(), "Q8_0");
  EXPECT_EQ(quantized->gguf().FindTensor("blk.0.attn_q.weight")->type, GgmlType::kQ8_0);
  EXPECT_EQ(quantized->gguf().FindTensor("blk.0.ffn_down.weight")->type, GgmlType::kF32);
  EXPECT_EQ(quantized->gguf().FindTensor("blk.0.attn_norm.weight")->type, GgmlType::kF32);
  EXPECT_EQ(*quantized->gguf().GetInt("general.file_type"), 7);
  const std::vector<TokenId> tokens = SomeTokens(10, model->config().n_vocab);
  EXPECT_LT(LargestDifference(AllLogits(*model, tokens, nullptr), AllLogits(*quantized, tokens, nullptr)), 0.05f);

  EXPECT_FALSE(RewriteModel(model->gguf(), model->config(), {nullptr, GgmlType::kIQ2_XXS, std::nullopt}, path).ok());
}

// `edgellm quantize --type Q4_K_M`: each weight gets its type in the mix,
// rows that are not whole blocks keep theirs, and the result computes close
// to the original.
TEST(LoraForward, QuantizingToAMixGivesEachWeightItsTypeInTheMix) {
  auto model = LoadModel(SyntheticModel("test-qwen2", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  const std::string path = (TestDir() / "q4_k_m.gguf").string();
  ASSERT_TRUE(RewriteModel(model->gguf(), model->config(), {nullptr, std::nullopt, QuantMix::kQ4_K_M}, path).ok());
  auto mixed = LoadModel(path);
  ASSERT_NE(mixed, nullptr);
  EXPECT_EQ(*mixed->gguf().GetInt("general.file_type"), 15);
  const bool tied = model->gguf().FindTensor("output.weight") == nullptr;
  int changed = 0;
  for (const GgufTensorInfo& info : model->gguf().tensors()) {
    const GgufTensorInfo* written = mixed->gguf().FindTensor(info.name);
    ASSERT_NE(written, nullptr) << info.name;
    if (info.dims.size() != 2) {
      EXPECT_EQ(written->type, GgmlType::kF32) << info.name;
      continue;
    }
    int layer = -1;
    std::sscanf(info.name.c_str(), "blk.%d.", &layer);
    const bool output = info.name == "output.weight" || (info.name == "token_embd.weight" && tied);
    const GgmlType want = MixedType(QuantMix::kQ4_K_M, info.name, layer, model->config().n_layer, info.dims[0], output);
    EXPECT_EQ(written->type, info.dims[0] % TraitsOf(want).block_size == 0 ? want : GgmlType::kF32) << info.name;
    changed += written->type != GgmlType::kF32;
  }
  EXPECT_GT(changed, 0);
  const std::vector<TokenId> tokens = SomeTokens(10, model->config().n_vocab);
  EXPECT_LT(LargestDifference(AllLogits(*model, tokens, nullptr), AllLogits(*mixed, tokens, nullptr)), 0.2f);

  EXPECT_FALSE(
      RewriteModel(model->gguf(), model->config(), {nullptr, GgmlType::kQ8_0, QuantMix::kQ4_K_M}, path).ok());
}

}  // namespace
}  // namespace edgellm::engine
