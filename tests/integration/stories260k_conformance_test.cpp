// Conformance with llama.cpp on a real pretrained model: ../shared/models/stories260K.gguf
// and the outputs llama.cpp produced for it (stories260K.reference.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "daemon/engine/engine.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::NewCache;
using edgellm::testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K.gguf");
const std::string kReference = SharedPath("models/stories260K.reference.json");

nlohmann::json Reference() {
  std::ifstream in(kReference);
  return nlohmann::json::parse(in);
}

std::unique_ptr<LlamaModel> LoadModel(int threads = 2) {
  ModelOptions options;
  options.threads = threads;
  auto model = LlamaModel::Load(kModel, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

TEST(Stories260k, HyperparametersAreTheOnesInTheReadme) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  auto gguf = GgufReader::Open(kModel);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ((*gguf)->version(), 3u);
  EXPECT_EQ((*gguf)->metadata().size(), 19u);
  EXPECT_EQ((*gguf)->tensors().size(), 48u);
  EXPECT_EQ((*gguf)->alignment(), 32u);
  EXPECT_EQ((*gguf)->data_offset(), 14176u);
  for (const GgufTensorInfo& t : (*gguf)->tensors()) EXPECT_EQ(t.type, GgmlType::kF32) << t.name;

  auto c = LlamaConfig::FromGguf(**gguf);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "llama");
  EXPECT_EQ(c->n_layer, 5);
  EXPECT_EQ(c->n_embd, 64);
  EXPECT_EQ(c->n_head, 8);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->n_head_kv, 4);
  EXPECT_EQ(c->n_ff, 172);
  EXPECT_EQ(c->n_vocab, 512);
  EXPECT_EQ(c->n_ctx_train, 2048);
  EXPECT_EQ(c->rope_dims, 8);
  EXPECT_EQ(c->rope_freq_base, 10000.0f);
  EXPECT_FLOAT_EQ(c->rms_norm_eps, 1e-5f);
  EXPECT_EQ((*gguf)->FindTensor("blk.0.ffn_down.weight")->dims, (std::vector<uint64_t>{172, 64}));

  auto vocab = Vocab::FromGguf(**gguf);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->model, "llama");
  EXPECT_EQ(vocab->bos_id, 1);
  EXPECT_EQ(vocab->eos_id, 2);
  EXPECT_EQ(vocab->unk_id, 0);
  EXPECT_TRUE(vocab->add_bos);
  EXPECT_TRUE(vocab->add_space_prefix);
  EXPECT_EQ(vocab->tokens[3], "<0x00>");
  EXPECT_EQ(vocab->tokens[258], "<0xFF>");
  EXPECT_EQ(vocab->scores[300], -41.0f);
}

TEST(Stories260k, EveryTokenizerCaseGivesLlamaCppsIds) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto gguf = GgufReader::Open(kModel);
  ASSERT_TRUE(gguf.ok());
  auto tokenizer = Tokenizer::FromGguf(**gguf);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json cases = Reference()["tokenizer_cases"]["cases"];
  ASSERT_GE(cases.size(), 17u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    EXPECT_EQ((*tokenizer)->Encode(text, true), c["ids_with_bos"].get<std::vector<TokenId>>()) << "'" << text << "'";
    EXPECT_EQ((*tokenizer)->Encode(text, false), c["ids_no_bos"].get<std::vector<TokenId>>()) << "'" << text << "'";
  }
}

TEST(Stories260k, GreedyGenerationGivesLlamaCppsTokens) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  const nlohmann::json references = Reference()["references"];
  ASSERT_EQ(references.size(), 4u);
  for (const auto& ref : references) {
    const std::string prompt = ref["prompt"];
    GenerateOptions options;
    options.max_tokens = ref["n_predict"];
    options.sampling.temperature = 0.0f;
    options.sampling.repeat_penalty = 1.0f;
    auto result = Generate(*model, prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->prompt_ids, ref["prompt_token_ids"].get<std::vector<TokenId>>()) << prompt;
    EXPECT_EQ(result->token_ids, ref["generated_token_ids"].get<std::vector<TokenId>>()) << prompt;
    EXPECT_EQ(result->text, ref["generated_text"].get<std::string>()) << prompt;
  }
}

TEST(Stories260k, TheSameTokensWithOneThreadOrTwo) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  const nlohmann::json ref = Reference()["references"][1];
  for (int threads : {1, 2}) {
    auto model = LoadModel(threads);
    ASSERT_NE(model, nullptr);
    GenerateOptions options;
    options.max_tokens = ref["n_predict"];
    options.sampling.temperature = 0.0f;
    auto result = Generate(*model, ref["prompt"].get<std::string>(), options);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->token_ids, ref["generated_token_ids"].get<std::vector<TokenId>>()) << threads << " threads";
  }
}

// Every reference prompt decoded together, one batched forward per step, as a
// server with continuous batching would: the tokens must be llama.cpp's.
TEST(Stories260k, BatchedGreedyDecodingGivesLlamaCppsTokens) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  const nlohmann::json references = Reference()["references"];
  const size_t n = references.size();
  std::vector<std::vector<TokenId>> prompts(n), generated(n);
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<BatchItem> items;
  for (size_t i = 0; i < n; ++i) {
    prompts[i] = references[i]["prompt_token_ids"].get<std::vector<TokenId>>();
    caches.push_back(NewCache(*model));
    items.push_back({prompts[i], caches.back().get()});
  }
  std::vector<float> logits;
  std::vector<TokenId> next(n);
  for (int step = 0; step < 64; ++step) {
    ASSERT_TRUE(model->ForwardBatch(items, &logits).ok());
    for (size_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * 512;
      next[i] = static_cast<TokenId>(std::max_element(row, row + 512) - row);
      generated[i].push_back(next[i]);
      items[i].tokens = {&next[i], 1};
    }
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(generated[i], references[i]["generated_token_ids"].get<std::vector<TokenId>>())
        << references[i]["prompt"];
  }
}

TEST(Stories260k, LongGreedyStoryMatchesLlama2c) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  GenerateOptions options;
  options.max_tokens = 256;  // llama2.c's 256 steps, each printing the next token
  options.sampling.temperature = 0.0f;
  auto result = Generate(*model, "", options);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::string expected = Reference()["cross_checks"]["karpathy_llama2c_doc"]["text"];
  // llama2.c strips the leading space of the first piece; llama.cpp keeps it.
  ASSERT_FALSE(result->text.empty());
  EXPECT_EQ(result->text.substr(1), expected);
}

// Speculative decoding (prompt-lookup drafts, checked in one forward) gives
// the plain greedy story token for token, in fewer forwards.
TEST(Stories260k, SpeculativeDecodingGivesThePlainGreedyStory) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  for (const std::string prompt : {"", "Once upon a time", "Lily and Ben went to the park"}) {
    GenerateOptions options;
    options.max_tokens = 256;
    options.sampling.temperature = 0.0f;
    auto plain = Generate(*model, prompt, options);
    options.draft_tokens = 6;
    auto speculative = Generate(*model, prompt, options);
    ASSERT_TRUE(plain.ok() && speculative.ok());
    EXPECT_EQ(speculative->token_ids, plain->token_ids) << prompt;
    EXPECT_EQ(speculative->text, plain->text) << prompt;
    EXPECT_GT(speculative->accepted_tokens, 0) << prompt;
    // Each step adds its standing drafts and one token of its own (the last
    // step may end on a draft).
    EXPECT_GE(speculative->decode_steps + speculative->accepted_tokens, plain->decode_steps) << prompt;
    EXPECT_LE(speculative->decode_steps + speculative->accepted_tokens, plain->decode_steps + 1) << prompt;
  }
}

TEST(Stories260k, CachedLogitsEqualAFullForward) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kReference);
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  const nlohmann::json ref = Reference()["references"][0];
  std::vector<TokenId> tokens = ref["prompt_token_ids"].get<std::vector<TokenId>>();
  const std::vector<TokenId> generated = ref["generated_token_ids"].get<std::vector<TokenId>>();
  tokens.insert(tokens.end(), generated.begin(), generated.end());
  const size_t vocab = 512;

  std::vector<float> full;
  ASSERT_TRUE(model->ForwardNoCache(tokens, &full).ok());
  auto cache = NewCache(*model);
  const size_t prompt = ref["prompt_token_ids"].size();
  std::vector<float> logits;
  ASSERT_TRUE(model->Forward(absl::MakeConstSpan(tokens).subspan(0, prompt), cache.get(), true, &logits).ok());
  float worst = 0.0f;
  for (size_t i = 0; i < prompt * vocab; ++i) worst = std::max(worst, std::fabs(logits[i] - full[i]));
  for (size_t t = prompt; t < tokens.size(); ++t) {
    ASSERT_TRUE(model->Forward({&tokens[t], 1}, cache.get(), false, &logits).ok());
    for (size_t i = 0; i < vocab; ++i) worst = std::max(worst, std::fabs(logits[i] - full[t * vocab + i]));
  }
  EXPECT_LE(worst, 1e-4f);
}

}  // namespace
}  // namespace edgellm::engine
