#include "daemon/engine/synthetic_model.h"

#include <gtest/gtest.h>

#include <random>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/synthetic_vocab.h"
#include "daemon/engine/utf8.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

// U+2581 is the SentencePiece space mark: a literal one decodes as a space
// (as in SentencePiece and llama.cpp), so only byte-level BPE gets it.
std::string RandomUtf8(std::mt19937& rng, int n, bool with_space_mark) {
  static const uint32_t kPool[] = {'a', 'Z', ' ', ' ', '\n', '\t', '.', '\'', '7', 0xe9, 0x3b1, 0x65e5, 0x1f600, 0x2581};
  const size_t pool_size = std::size(kPool) - (with_space_mark ? 0 : 1);
  std::string s;
  for (int i = 0; i < n; ++i) AppendUtf8(kPool[rng() % pool_size], &s);
  return s;
}

TEST(SyntheticVocab, ExactSizesAndEveryTextRoundTrips) {
  std::mt19937 rng(11);
  for (const bool bpe : {false, true}) {
    for (int32_t size : {384, 4000}) {
      absl::StatusOr<Vocab> vocab = bpe ? MakeBpeVocab(size, 3) : MakeSpmVocab(size, 3);
      ASSERT_TRUE(vocab.ok()) << vocab.status();
      EXPECT_EQ(vocab->tokens.size(), static_cast<size_t>(size));
      auto tokenizer = Tokenizer::FromVocab(*vocab);
      ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
      for (int i = 0; i < 200; ++i) {
        const std::string text = RandomUtf8(rng, 1 + i % 40, bpe);
        const std::string decoded = (*tokenizer)->Decode((*tokenizer)->Encode(text, false, false));
        // The llama tokenizer adds one leading space; gpt2 adds none.
        ASSERT_EQ(decoded, bpe ? text : " " + text) << (bpe ? "bpe" : "spm") << " size " << size;
      }
      // English from the built-in corpus uses learned merges: fewer tokens than bytes.
      const std::string english = "The robot checked the weather every morning";
      EXPECT_LT((*tokenizer)->Encode(english, false).size(), english.size() / 2);
    }
  }
  EXPECT_EQ(MakeSpmVocab(100, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SyntheticModel, EveryShapeIsKnownAtItsRealSize) {
  const ModelShape smol = *FindShape("smol-135m");
  EXPECT_EQ(smol.n_layer, 30);
  EXPECT_EQ(smol.n_embd, 576);
  EXPECT_EQ(smol.n_head, 9);
  EXPECT_EQ(smol.n_head_kv, 3);
  EXPECT_EQ(smol.n_ff, 1536);
  EXPECT_EQ(smol.n_vocab, 49152);
  const ModelShape tiny = *FindShape("tinyllama-1.1b");
  EXPECT_EQ(tiny.n_layer, 22);
  EXPECT_EQ(tiny.n_embd, 2048);
  EXPECT_EQ(tiny.n_head, 32);
  EXPECT_EQ(tiny.n_head_kv, 4);
  EXPECT_EQ(tiny.n_ff, 5632);
  EXPECT_EQ(tiny.n_vocab, 32000);
  EXPECT_FALSE(FindShape("gpt-5").has_value());
}

TEST(SyntheticModel, Stories260kShapeFallsBackToF16WhereRowsAreNotWholeBlocks) {
  auto gguf = GgufReader::Open(edgellm::testing::SyntheticModel("stories260k", GgmlType::kQ8_0));
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ((*gguf)->FindTensor("blk.0.ffn_down.weight")->type, GgmlType::kF16);  // rows of 172
  EXPECT_EQ((*gguf)->FindTensor("blk.0.ffn_up.weight")->type, GgmlType::kQ8_0);
  EXPECT_EQ((*gguf)->FindTensor("blk.0.attn_norm.weight")->type, GgmlType::kF32);
  auto model = LlamaModel::Load(edgellm::testing::SyntheticModel("stories260k", GgmlType::kQ8_0), {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config().n_ff, 172);
}

TEST(SyntheticModel, WritesSmol135mThatLoadsAndGenerates) {
  const std::string path = edgellm::testing::SyntheticModel("smol-135m", GgmlType::kQ4_0);
  ModelOptions options;
  options.threads = 2;
  auto model = LlamaModel::Load(path, options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config().n_vocab, 49152);
  EXPECT_EQ((*model)->tokenizer().vocab().model, "gpt2");
  EXPECT_EQ((*model)->gguf().FindTensor("output.weight"), nullptr);  // tied embeddings
  auto cache = edgellm::testing::NewCache(**model);
  std::vector<float> logits;
  const std::vector<TokenId> prompt = (*model)->tokenizer().Encode("The robot", true);
  ASSERT_TRUE((*model)->Forward(prompt, cache.get(), false, &logits).ok());
  EXPECT_EQ(logits.size(), 49152u);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(SyntheticModel, WritesTinyLlamaAtFullSize) {
  const std::string path = (edgellm::testing::TestDir() / "tinyllama.gguf").string();
  ASSERT_TRUE(WriteSyntheticModel({*FindShape("tinyllama-1.1b"), GgmlType::kQ4_0, 1, ""}, path).ok());
  auto gguf = GgufReader::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto config = LlamaConfig::FromGguf(**gguf);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->n_layer, 22);
  EXPECT_EQ(config->n_head_kv, 4);
  EXPECT_EQ(config->n_vocab, 32000);
  EXPECT_EQ((*gguf)->tensors().size(), 3u + 22u * 9u);
  uint64_t params = 0;
  for (const GgufTensorInfo& t : (*gguf)->tensors()) params += t.element_count();
  EXPECT_NEAR(static_cast<double>(params), 1.1e9, 0.05e9);
  auto tokenizer = Tokenizer::FromGguf(**gguf);
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)->Decode((*tokenizer)->Encode("Edge devices learn.", false)), " Edge devices learn.");
  std::filesystem::remove(path);
}

TEST(SyntheticModel, RefusesTypesItCannotWrite) {
  EXPECT_EQ(WriteSyntheticModel({*FindShape("test-spm"), GgmlType::kIQ2_XXS, 1, ""}, "/tmp/never.gguf").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgellm::engine
