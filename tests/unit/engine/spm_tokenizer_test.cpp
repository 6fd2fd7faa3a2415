#include "daemon/engine/spm_tokenizer.h"

#include <gtest/gtest.h>

#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

// <unk> <s> </s>, 256 byte tokens, then `pieces` with the given scores.
Vocab SmallVocab(const std::vector<std::pair<std::string, float>>& pieces, bool space_prefix) {
  Vocab v = SpmBaseVocab();
  for (const auto& [text, score] : pieces) {
    v.tokens.push_back(text);
    v.kinds.push_back(TokenKind::kNormal);
    v.scores.push_back(score);
  }
  v.add_space_prefix = space_prefix;
  return v;
}

constexpr TokenId kFirstPiece = 259;
TokenId Byte(uint8_t b) { return 3 + b; }

TEST(SpmTokenizer, MergesTheHighestScoringPairFirst) {
  // "ab" outranks "bc": "abc" -> "ab" + "c"; with "bc" ranked higher -> "a" + "bc".
  auto t = Tokenizer::FromVocab(SmallVocab({{"a", -10}, {"b", -10}, {"c", -10}, {"ab", -1}, {"bc", -2}}, false));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("abc", false), (std::vector<TokenId>{kFirstPiece + 3, kFirstPiece + 2}));
  auto u = Tokenizer::FromVocab(SmallVocab({{"a", -10}, {"b", -10}, {"c", -10}, {"ab", -2}, {"bc", -1}}, false));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->Encode("abc", false), (std::vector<TokenId>{kFirstPiece, kFirstPiece + 4}));
}

TEST(SpmTokenizer, LeadingSpaceRuleAndBos) {
  const std::string mark = "\xe2\x96\x81";
  // "hi" must exist for "▁" + "hi" to be reachable by pair merges.
  auto t = Tokenizer::FromVocab(SmallVocab({{mark + "hi", -1}, {mark, -5}, {"h", -5}, {"i", -5}, {"hi", -2}}, true));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("hi"), (std::vector<TokenId>{1, kFirstPiece}));
  EXPECT_EQ((*t)->Encode("hi", false), (std::vector<TokenId>{kFirstPiece}));
  // A space prefix again after a special token, as llama.cpp does.
  EXPECT_EQ((*t)->Encode("hi<s>hi", false), (std::vector<TokenId>{kFirstPiece, 1, kFirstPiece}));
  EXPECT_EQ((*t)->Encode(""), (std::vector<TokenId>{1}));
  EXPECT_EQ((*t)->Encode("", false), (std::vector<TokenId>{}));
}

TEST(SpmTokenizer, UnknownCharactersFallBackToBytes) {
  auto t = Tokenizer::FromVocab(SmallVocab({{"a", -1}}, false));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("a\xc3\xa9", false), (std::vector<TokenId>{kFirstPiece, Byte(0xc3), Byte(0xa9)}));
  EXPECT_EQ((*t)->Decode((*t)->Encode("a\xc3\xa9", false)), "a\xc3\xa9");
}

TEST(SpmTokenizer, SpecialTextIsPlainWhenNotParsed) {
  auto t = Tokenizer::FromVocab(SmallVocab({}, false));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("<s>", false, true), (std::vector<TokenId>{1}));
  EXPECT_EQ((*t)->Encode("<s>", false, false), (std::vector<TokenId>{Byte('<'), Byte('s'), Byte('>')}));
}

TEST(SpmTokenizer, DecodeRendersSpacesBytesAndHidesControlTokens) {
  const std::string mark = "\xe2\x96\x81";
  auto t = Tokenizer::FromVocab(SmallVocab({{mark + "hi", -1}}, true));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Decode(std::vector<TokenId>{1, kFirstPiece, Byte('!'), 2}), " hi!");
  EXPECT_EQ((*t)->TokenToPiece(0), "\xe2\x96\x85");
  EXPECT_EQ((*t)->TokenToPiece(-1), "");
  EXPECT_EQ((*t)->TokenToPiece(100000), "");
}

TEST(SpmTokenizer, RefusesAVocabularyWithoutScores) {
  Vocab v = SmallVocab({}, false);
  v.scores.clear();
  EXPECT_EQ(Tokenizer::FromVocab(v).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgellm::engine
