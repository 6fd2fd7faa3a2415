#include "daemon/engine/split_regex.h"

#include <gtest/gtest.h>

#include <string>

#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

using Words = std::vector<std::string>;

// Splits `text` (one segment) with `pattern` and returns the pieces.
Words SplitText(std::string_view pattern, std::string_view text) {
  absl::StatusOr<SplitRegex> regex = SplitRegex::Compile(pattern);
  EXPECT_TRUE(regex.ok()) << regex.status();
  if (!regex.ok()) return {};
  std::vector<std::string> chars;
  std::vector<uint32_t> values;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    values.push_back(regex->MatchValue(Utf8Next(text, &pos)));
    chars.emplace_back(text.substr(start, pos - start));
  }
  const std::vector<size_t> whole = {values.size()};
  std::vector<size_t> lengths;
  regex->Split(values, values.empty() ? std::vector<size_t>{} : whole, &lengths);
  Words words;
  size_t at = 0;
  for (size_t n : lengths) {
    std::string& w = words.emplace_back();
    for (size_t i = 0; i < n; ++i) w += chars[at + i];
    at += n;
  }
  return words;
}

TEST(SplitRegex, AlternativesAreTriedInOrderNotLongestFirst) {
  EXPECT_EQ(SplitText("a|ab", "ab"), (Words{"a", "b"}));
  EXPECT_EQ(SplitText("ab|a", "ab"), (Words{"ab"}));
}

TEST(SplitRegex, UnmatchedRunsArePiecesOfTheirOwn) {
  EXPECT_EQ(SplitText("[0-9]+", "ab12cd3"), (Words{"ab", "12", "cd", "3"}));
  EXPECT_EQ(SplitText("x", "none"), (Words{"none"}));
  EXPECT_EQ(SplitText("x", ""), Words{});
}

TEST(SplitRegex, GreedyRunsGiveBackForWhatFollows) {
  // \s+(?!\S): a run of spaces leaves its last one to the word after it.
  EXPECT_EQ(SplitText(R"(\s+(?!\S))", "a   b"), (Words{"a", "  ", " b"}));
  EXPECT_EQ(SplitText(R"(\s*[\r\n]+)", "  \n  \n  x"), (Words{"  \n  \n", "  x"}));
  EXPECT_EQ(SplitText(R"(\p{N}{1,3})", "12345"), (Words{"123", "45"}));
  EXPECT_EQ(SplitText("a{2}", "aaaaa"), (Words{"aa", "aa", "a"}));
  EXPECT_EQ(SplitText("(?:ab)+c", "ababcab"), (Words{"ababc", "ab"}));
}

TEST(SplitRegex, AnchorsHoldAtTheEndsOfTheSegment) {
  EXPECT_EQ(SplitText(R"(\s+$)", "ab  "), (Words{"ab", "  "}));
  EXPECT_EQ(SplitText(R"(\s+$)", "a  b"), (Words{"a  b"}));
  EXPECT_EQ(SplitText("^a", "aaa"), (Words{"a", "aa"}));
}

TEST(SplitRegex, CategoriesMatchNonAsciiThroughTheirStandIns) {
  EXPECT_EQ(SplitText(R"(\p{L}+)", "h\xc3\xa9llo w\xc3\xb6rld"), (Words{"h\xc3\xa9llo", " ", "w\xc3\xb6rld"}));
  // U+0663 ARABIC-INDIC DIGIT THREE is a number, U+00BF INVERTED QUESTION MARK punctuation.
  EXPECT_EQ(SplitText(R"(\p{N}+)", "x\xd9\xa3" "4y"), (Words{"x", "\xd9\xa3" "4", "y"}));
  EXPECT_EQ(SplitText(R"(\p{P}+)", "a\xc2\xbf?b"), (Words{"a", "\xc2\xbf?", "b"}));
  // '~' is a symbol in Unicode, but not in the table llama.cpp matches \p{S} with.
  EXPECT_EQ(SplitText(R"(\p{S}+)", "a+~b"), (Words{"a", "+", "~b"}));
}

TEST(SplitRegex, NonAsciiWhiteSpaceMatchesAsWhiteSpace) {
  // U+3000 IDEOGRAPHIC SPACE, in a pattern with and without categories.
  EXPECT_EQ(SplitText(R"(\s+)", "a\xe3\x80\x80" "b"), (Words{"a", "\xe3\x80\x80", "b"}));
  EXPECT_EQ(SplitText(R"(\s+|\p{L}+)", "a\xe3\x80\x80" "b"), (Words{"a", "\xe3\x80\x80", "b"}));
  // ... and so no longer as itself: a class naming it does not match it.
  EXPECT_EQ(SplitText("[\u3000-\u3002]+", "\u3001\u3000"), (Words{"\u3001", "\u3000"}));
}

TEST(SplitRegex, ClassesTakeRangesEscapesAndNegation) {
  EXPECT_EQ(SplitText(R"([^\s\p{L}]+)", "ab, 12!"), (Words{"ab", ",", " ", "12!"}));
  EXPECT_EQ(SplitText(R"([\$\+<=>\^~\|`]+)", "a<=>b"), (Words{"a", "<=>", "b"}));
  EXPECT_EQ(SplitText("[\xce\xb1-\xcf\x89]+", "x\xce\xb1\xce\xb2y"), (Words{"x", "\xce\xb1\xce\xb2", "y"}));
}

TEST(SplitRegex, SegmentsAreMatchedApart) {
  absl::StatusOr<SplitRegex> regex = SplitRegex::Compile("a+");
  ASSERT_TRUE(regex.ok());
  const std::vector<uint32_t> chars = {'a', 'a', 'a', 'b', 'a'};
  std::vector<size_t> lengths;
  regex->Split(chars, std::vector<size_t>{1, 3, 1}, &lengths);
  EXPECT_EQ(lengths, (std::vector<size_t>{1, 2, 1, 1}));
}

TEST(SplitRegex, RefusesWhatItDoesNotSupportNamingThePlace) {
  for (std::string_view bad : {"(?<=a)b", "a{2,1}", "[b-a]", R"(\q)", "(ab", "ab)", "*a", "a+?", R"(\p{Han})",
                               "[abc"}) {
    absl::StatusOr<SplitRegex> regex = SplitRegex::Compile(bad);
    ASSERT_FALSE(regex.ok()) << bad;
    EXPECT_EQ(regex.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(regex.status().message().find("at character"), std::string_view::npos) << regex.status();
  }
}

TEST(SplitRegex, LongRunsNeedNoDeepRecursion) {
  const std::string digits(200000, '7');
  const Words words = SplitText(R"(\p{N}+|\s+)", digits);
  ASSERT_EQ(words.size(), 1u);
  EXPECT_EQ(words[0].size(), digits.size());
}

// A hostile prompt: a megabyte of spaces that \s+$ cannot match (a digit
// ends it). Trying every start anew would take on the order of 10^12 steps;
// an alternative that failed inside a run is not tried again in that run.
TEST(SplitRegex, ARunThatCannotMatchIsNotRetriedAtEveryStart) {
  const std::string spaces(1 << 20, ' ');
  EXPECT_EQ(SplitText(R"(\s+$)", spaces + "5"), (Words{spaces + "5"}));
  EXPECT_EQ(SplitText(R"(\s+$|5)", spaces + "5"), (Words{spaces, "5"}));
  EXPECT_EQ(SplitText(R"(\s+$)", spaces), (Words{spaces}));
  // The skip keeps the order of alternatives: a later one still matches inside the run.
  EXPECT_EQ(SplitText(R"(\s+$|\s\s)", "     x"), (Words{"  ", "  ", " x"}));
}

}  // namespace
}  // namespace edgellm::engine
