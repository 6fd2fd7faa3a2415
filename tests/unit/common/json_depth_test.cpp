#include "common/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace edgellm {
namespace {

TEST(JsonDepth, CountsBracketsOutsideStringsOnly) {
  EXPECT_EQ(JsonDepth(R"({"a": 1})"), 1u);
  EXPECT_EQ(JsonDepth(R"({"a": [[1], {"b": []}]})"), 4u);
  EXPECT_EQ(JsonDepth(R"({"a": "[[[{{{", "b": "\"[[["})"), 1u);
  EXPECT_EQ(JsonDepth("42"), 0u);
  EXPECT_EQ(JsonDepth(std::string(1 << 20, '[')), size_t{1} << 20) << "a megabyte scanned, nothing built";
}

TEST(JsonDepth, FindsWhereAValueEnds) {
  const std::string text = R"(say {"q": "}", "r": [1, {"s": 2}]} then more)";
  EXPECT_EQ(text.substr(4, JsonValueEnd(text, 4) - 4), R"({"q": "}", "r": [1, {"s": 2}]})");
  EXPECT_EQ(JsonValueEnd("[1, [2]", 0), std::string_view::npos);
}

}  // namespace
}  // namespace edgellm
