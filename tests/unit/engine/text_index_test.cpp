#include "daemon/engine/text_index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgellm::engine {
namespace {

TEST(TextIndex, FindsEveryTextAtItsPosition) {
  std::vector<std::string> texts;
  for (int i = 0; i < 5000; ++i) texts.push_back("t" + std::to_string(i * 7));
  texts.push_back("");
  const TextIndex index(&texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(index.Find(texts[i]), static_cast<int32_t>(i)) << texts[i];
  EXPECT_EQ(index.Find("t1"), -1);
  EXPECT_EQ(index.Find("t35000"), -1);
  EXPECT_EQ(index.Find(std::string("t7\0", 3)), -1);
}

TEST(TextIndex, ARepeatedTextKeepsItsFirstPosition) {
  const std::vector<std::string> texts = {"a", "b", "a", "c", "b"};
  const TextIndex index(&texts);
  EXPECT_EQ(index.Find("a"), 0);
  EXPECT_EQ(index.Find("b"), 1);
  EXPECT_EQ(index.Find("c"), 3);
}

TEST(TextIndex, AnEmptyListOrNoListFindsNothing) {
  const std::vector<std::string> none;
  EXPECT_EQ(TextIndex(&none).Find(""), -1);
  EXPECT_EQ(TextIndex().Find("a"), -1);
}

}  // namespace
}  // namespace edgellm::engine
