#include "daemon/engine/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <set>

#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

std::string Mapped(std::string_view bytes) {
  std::string out;
  for (char c : bytes) AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(c)), &out);
  return out;
}

// <|endoftext|>, the 256 byte symbols (ids 1..256), then merged tokens.
Vocab SmallVocab(const std::vector<std::string>& merges) {
  Vocab v;
  v.model = "gpt2";
  v.tokens = {"<|endoftext|>"};
  v.kinds = {TokenKind::kControl};
  for (int b = 0; b < 256; ++b) v.tokens.push_back(Mapped(std::string(1, static_cast<char>(b))));
  for (const std::string& m : merges) {
    std::string token = m;
    token.erase(token.find(' '), 1);
    v.tokens.push_back(token);
    v.merges.push_back(m);
  }
  v.kinds.resize(v.tokens.size(), TokenKind::kNormal);
  v.bos_id = v.eos_id = 0;
  return v;
}

TokenId ByteId(char c) { return 1 + static_cast<uint8_t>(c); }

TEST(BpeTokenizer, ByteTableIsABijectionOntoPrintableCodePoints) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = Gpt2ByteToCodePoint(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(Gpt2CodePointToByte(cp), b);
  }
  EXPECT_EQ(Gpt2ByteToCodePoint(' '), 0x120u);  // "Ġ"
  EXPECT_EQ(Gpt2ByteToCodePoint('\n'), 0x10au);  // "Ċ"
  EXPECT_EQ(Gpt2ByteToCodePoint('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(Gpt2CodePointToByte(0x4e00), -1);
}

TEST(BpeTokenizer, AppliesMergesByRank) {
  const std::string g = Mapped(" ");
  auto t = Tokenizer::FromVocab(SmallVocab({g + " t", "h e", g + "t he"}));
  ASSERT_TRUE(t.ok()) << t.status();
  const TokenId g_t = 257, he = 258, g_the = 259;
  EXPECT_EQ((*t)->Encode(" the", false), (std::vector<TokenId>{g_the}));
  EXPECT_EQ((*t)->Encode("the", false), (std::vector<TokenId>{ByteId('t'), he}));
  EXPECT_EQ((*t)->Encode(" th", false), (std::vector<TokenId>{g_t, ByteId('h')}));
  EXPECT_EQ((*t)->Decode((*t)->Encode("the the", false)), "the the");
}

TEST(BpeTokenizer, EveryByteSurvivesARoundTrip) {
  auto t = Tokenizer::FromVocab(SmallVocab({}));
  ASSERT_TRUE(t.ok());
  std::string all;
  for (int b = 1; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ((*t)->Decode((*t)->Encode(all, false)), all);
}

TEST(BpeTokenizer, SpecialTokensAreSplitOut) {
  auto t = Tokenizer::FromVocab(SmallVocab({}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("a<|endoftext|>b", false), (std::vector<TokenId>{ByteId('a'), 0, ByteId('b')}));
  EXPECT_EQ((*t)->Decode(std::vector<TokenId>{ByteId('a'), 0, ByteId('b')}), "ab");
}

TEST(BpeTokenizer, SmollmPreTokenizerKeepsDigitsApart) {
  Vocab v = SmallVocab({"1 2"});
  auto plain = Tokenizer::FromVocab(v);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->Encode("12", false), (std::vector<TokenId>{257}));  // merged
  v.pre = "smollm";
  auto smollm = Tokenizer::FromVocab(v);
  ASSERT_TRUE(smollm.ok()) << smollm.status();
  EXPECT_EQ((*smollm)->Encode("12", false), (std::vector<TokenId>{ByteId('1'), ByteId('2')}));
}

TEST(BpeTokenizer, RefusesMalformedMergesAndUnknownPreTokenizers) {
  Vocab bad_merge = SmallVocab({});
  bad_merge.merges = {"nospace"};
  EXPECT_EQ(Tokenizer::FromVocab(bad_merge).status().code(), absl::StatusCode::kInvalidArgument);
  Vocab bad_pre = SmallVocab({});
  bad_pre.pre = "qwen9";
  const absl::Status s = Tokenizer::FromVocab(bad_pre).status();
  EXPECT_NE(s.message().find("qwen9"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace edgellm::engine
