#include "daemon/engine/quant_mix.h"

#include <gtest/gtest.h>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/synthetic_model.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

TEST(QuantMix, Q4_K_MGivesTheLayersThatMatterMoreBits) {
  EXPECT_EQ(QuantMixFromName("Q4_K_M"), QuantMix::kQ4_K_M);
  EXPECT_FALSE(QuantMixFromName("Q4_K").has_value());
  const QuantMix mix = QuantMix::kQ4_K_M;
  // 16 layers: the first and last two, and every third between, get Q6_K.
  std::vector<int32_t> more_bits;
  for (int32_t layer = 0; layer < 16; ++layer) {
    if (MixedType(mix, "blk.0.ffn_down.weight", layer, 16, 2048, false) == GgmlType::kQ6_K) more_bits.push_back(layer);
  }
  EXPECT_EQ(more_bits, (std::vector<int32_t>{0, 1, 4, 7, 10, 13, 14, 15}));
  EXPECT_EQ(MixedType(mix, "blk.4.attn_v.weight", 4, 16, 2048, false), GgmlType::kQ6_K);
  EXPECT_EQ(MixedType(mix, "blk.5.attn_v.weight", 5, 16, 2048, false), GgmlType::kQ4_K);
  EXPECT_EQ(MixedType(mix, "blk.5.attn_q.weight", 5, 16, 2048, false), GgmlType::kQ4_K);
  EXPECT_EQ(MixedType(mix, "blk.5.attn_qkv.weight", 5, 16, 2048, false), GgmlType::kQ5_K);
  EXPECT_EQ(MixedType(mix, "output.weight", -1, 16, 2048, true), GgmlType::kQ6_K);
  EXPECT_EQ(MixedType(mix, "token_embd.weight", -1, 16, 2048, false), GgmlType::kQ4_K);
  // Rows of 896 (Qwen2.5 0.5B) are not whole super-blocks: llama-quantize's fallbacks.
  EXPECT_EQ(MixedType(mix, "blk.5.attn_q.weight", 5, 24, 896, false), GgmlType::kQ5_0);
  EXPECT_EQ(MixedType(mix, "blk.0.attn_v.weight", 0, 24, 896, false), GgmlType::kQ8_0);
  EXPECT_EQ(MixedType(mix, "blk.5.attn_qkv.weight", 5, 24, 896, false), GgmlType::kQ5_1);
}

// A synthetic Q4_K_M file holds the mix, and its tied embedding is the output's Q6_K.
TEST(QuantMix, ASyntheticQ4_K_MFileHoldsTheMix) {
  const std::string path = (edgellm::testing::TestDir() / "mix.gguf").string();
  ASSERT_TRUE(WriteSyntheticModel({*FindShape("test-k"), GgmlType::kQ4_K, 1, ""}, path, QuantMix::kQ4_K_M).ok());
  auto gguf = GgufReader::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ((*gguf)->FindTensor("blk.0.attn_q.weight")->type, GgmlType::kQ4_K);
  EXPECT_EQ((*gguf)->FindTensor("blk.0.attn_v.weight")->type, GgmlType::kQ4_K) << "of 2 layers, the last gets more bits";
  EXPECT_EQ((*gguf)->FindTensor("blk.1.attn_v.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ((*gguf)->FindTensor("blk.1.ffn_down.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ((*gguf)->FindTensor("output.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ(*(*gguf)->GetInt("general.file_type"), 15) << "llama.cpp's MOSTLY_Q4_K_M";
}

}  // namespace
}  // namespace edgellm::engine
