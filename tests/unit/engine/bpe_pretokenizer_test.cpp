#include "daemon/engine/bpe_pretokenizer.h"

#include <gtest/gtest.h>

#include <string>

namespace edgellm::engine {
namespace {

std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view w : PreTokenizeGpt2(text)) out.emplace_back(w);
  return out;
}

using Words = std::vector<std::string>;

TEST(BpePreTokenizer, FollowsTheGpt2Pattern) {
  EXPECT_EQ(Split("Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(Split("I'm here, don't"), (Words{"I", "'m", " here", ",", " don", "'t"}));
  EXPECT_EQ(Split("we'll've"), (Words{"we", "'ll", "'ve"}));
  EXPECT_EQ(Split("abc  def"), (Words{"abc", " ", " def"}));
  EXPECT_EQ(Split("x\n\ny"), (Words{"x", "\n", "\n", "y"}));
  EXPECT_EQ(Split("trailing  "), (Words{"trailing", "  "}));
  EXPECT_EQ(Split("3.14 and 1,000"), (Words{"3", ".", "14", " and", " 1", ",", "000"}));
  EXPECT_EQ(Split(" \xf0\x9f\x98\x80!"), (Words{" \xf0\x9f\x98\x80!"}));
  EXPECT_EQ(Split("\xc3\xbc" "ber caf\xc3\xa9"), (Words{"\xc3\xbc" "ber", " caf\xc3\xa9"}));
  EXPECT_EQ(Split("\xe6\x97\xa5\xe6\x9c\xac 42"), (Words{"\xe6\x97\xa5\xe6\x9c\xac", " 42"}));
  EXPECT_EQ(Split(""), Words{});
}

std::vector<std::string> SplitDigits(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view w : PreTokenizeGpt2(text, /*split_digits=*/true)) out.emplace_back(w);
  return out;
}

TEST(BpePreTokenizer, SmollmStyleIsolatesEveryDigit) {
  EXPECT_EQ(SplitDigits("3.14 and 1,000"), (Words{"3", ".", "1", "4", " and", " ", "1", ",", "0", "0", "0"}));
  EXPECT_EQ(SplitDigits("abc123def"), (Words{"abc", "1", "2", "3", "def"}));
  EXPECT_EQ(SplitDigits("a  1"), (Words{"a", "  ", "1"}));
  EXPECT_EQ(SplitDigits("no digits here"), Split("no digits here"));
}

TEST(BpePreTokenizer, PiecesConcatenateToTheInput) {
  const std::string text = "  Mixed\tinput: 'quoted' \xe2\x80\x94 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 123abc\r\n\xff\xfe end ";
  for (bool split_digits : {false, true}) {
    std::string joined;
    for (std::string_view w : PreTokenizeGpt2(text, split_digits)) joined.append(w);
    EXPECT_EQ(joined, text);
  }
}

}  // namespace
}  // namespace edgellm::engine
