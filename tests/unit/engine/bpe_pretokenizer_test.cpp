#include "daemon/engine/bpe_pretokenizer.h"

#include <gtest/gtest.h>

#include <string>

namespace edgellm::engine {
namespace {

using Words = std::vector<std::string>;

Words SplitWith(std::string_view name, std::string_view text) {
  auto pre = PreTokenizer::ForName(name);
  EXPECT_TRUE(pre.ok()) << pre.status();
  Words out;
  if (!pre.ok()) return out;
  for (std::string_view w : (*pre)->Split(text)) out.emplace_back(w);
  return out;
}

// The GPT-2 pattern.
Words Split(std::string_view text) { return SplitWith("gpt-2", text); }
// The same after every digit is made a piece of its own.
Words SplitDigits(std::string_view text) { return SplitWith("smollm", text); }

TEST(BpePreTokenizer, FollowsTheGpt2Pattern) {
  EXPECT_EQ(Split("Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(Split("I'm here, don't"), (Words{"I", "'m", " here", ",", " don", "'t"}));
  EXPECT_EQ(Split("we'll've"), (Words{"we", "'ll", "'ve"}));
  EXPECT_EQ(Split("we'll've 'S 'RE"), (Words{"we", "'ll", "'ve", " '", "S", " '", "RE"}));  // case matters
  // No-break spaces are white space, but only an ASCII space joins the word after it.
  EXPECT_EQ(Split("a\xc2\xa0\xc2\xa0" "b"), (Words{"a", "\xc2\xa0", "\xc2\xa0", "b"}));
  EXPECT_EQ(Split("abc  def"), (Words{"abc", " ", " def"}));
  EXPECT_EQ(Split("x\n\ny"), (Words{"x", "\n", "\n", "y"}));
  EXPECT_EQ(Split("trailing  "), (Words{"trailing", "  "}));
  EXPECT_EQ(Split("3.14 and 1,000"), (Words{"3", ".", "14", " and", " 1", ",", "000"}));
  EXPECT_EQ(Split(" \xf0\x9f\x98\x80!"), (Words{" \xf0\x9f\x98\x80!"}));
  EXPECT_EQ(Split("\xc3\xbc" "ber caf\xc3\xa9"), (Words{"\xc3\xbc" "ber", " caf\xc3\xa9"}));
  EXPECT_EQ(Split("\xe6\x97\xa5\xe6\x9c\xac 42"), (Words{"\xe6\x97\xa5\xe6\x9c\xac", " 42"}));
  EXPECT_EQ(Split(""), Words{});
}

TEST(BpePreTokenizer, SmollmStyleIsolatesEveryDigit) {
  EXPECT_EQ(SplitDigits("3.14 and 1,000"), (Words{"3", ".", "1", "4", " and", " ", "1", ",", "0", "0", "0"}));
  EXPECT_EQ(SplitDigits("abc123def"), (Words{"abc", "1", "2", "3", "def"}));
  EXPECT_EQ(SplitDigits("a  1"), (Words{"a", "  ", "1"}));
  EXPECT_EQ(SplitDigits("no digits here"), Split("no digits here"));
}

TEST(BpePreTokenizer, PiecesConcatenateToTheInput) {
  const std::string text = "  Mixed\tinput: 'quoted' \xe2\x80\x94 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 123abc\r\n\xff\xfe end ";
  for (const Words& words : {Split(text), SplitDigits(text)}) {
    std::string joined;
    for (const std::string& w : words) joined.append(w);
    EXPECT_EQ(joined, text);
  }
}

TEST(PreTokenizer, EveryNameItListsLoads) {
  ASSERT_GE(PreTokenizer::Names().size(), 30u);
  for (const std::string& name : PreTokenizer::Names()) {
    auto pre = PreTokenizer::ForName(name);
    EXPECT_TRUE(pre.ok()) << name << ": " << pre.status();
  }
}

TEST(PreTokenizer, AnUnknownNameIsRefusedWithTheSupportedOnes) {
  auto pre = PreTokenizer::ForName("tekken-9");
  ASSERT_FALSE(pre.ok());
  EXPECT_EQ(pre.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pre.status().message().find("'tekken-9'"), std::string_view::npos);
  EXPECT_NE(pre.status().message().find("llama-bpe"), std::string_view::npos);
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndKeepsNewlinesWithPunctuation) {
  EXPECT_EQ(SplitWith("llama-bpe", "Hello world 12345!!\n\nI'M"),
            (Words{"Hello", " world", " ", "123", "45", "!!\n\n", "I", "'M"}));
  EXPECT_TRUE((*PreTokenizer::ForName("llama-bpe"))->ignore_merges());
  EXPECT_FALSE((*PreTokenizer::ForName("qwen2"))->ignore_merges());
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(SplitWith("qwen2", "x=1234;"), (Words{"x", "=", "1", "2", "3", "4", ";"}));
}

TEST(PreTokenizer, PiecesConcatenateToTheInputForEveryName) {
  const std::string text =
      "  Mixed\tinput: 'quoted' \xe2\x80\x94 \xd9\x85\xd8\xb1 123abc\r\n\xff\xfe \xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x80" "end  ";
  for (const std::string& name : PreTokenizer::Names()) {
    std::string joined;
    for (std::string_view w : SplitWith(name, text)) {
      EXPECT_FALSE(w.empty()) << name;
      joined.append(w);
    }
    EXPECT_EQ(joined, text) << name;
  }
}

}  // namespace
}  // namespace edgellm::engine
