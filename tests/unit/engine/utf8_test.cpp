#include "daemon/engine/utf8.h"

#include <gtest/gtest.h>

namespace edgellm::engine {
namespace {

TEST(Utf8, SequenceLengths) {
  const std::string text = "a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80";  // a é 日 😀
  EXPECT_EQ(Utf8SequenceLength(text, 0), 1u);
  EXPECT_EQ(Utf8SequenceLength(text, 1), 2u);
  EXPECT_EQ(Utf8SequenceLength(text, 3), 3u);
  EXPECT_EQ(Utf8SequenceLength(text, 6), 4u);
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x98", 0), 1u);  // truncated: the byte stands alone
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xc0\x80", 0), 1u);  // overlong lead byte
}

TEST(Utf8, DecodesAndEncodesEveryPlane) {
  for (uint32_t cp : {0x41u, 0xe9u, 0x65e5u, 0x1f600u, 0x10ffffu}) {
    std::string s;
    AppendUtf8(cp, &s);
    size_t pos = 0;
    EXPECT_EQ(Utf8Next(s, &pos), cp);
    EXPECT_EQ(pos, s.size());
  }
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xf0\x9f\x98\x80");  // valid: unchanged
  EXPECT_EQ(ToValidUtf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(ToValidUtf8("\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(ToValidUtf8("x\xf0\x9f"), "x\xef\xbf\xbd\xef\xbf\xbd");  // a truncated sequence
  EXPECT_EQ(ToValidUtf8("\xc0\x80"), "\xef\xbf\xbd\xef\xbf\xbd");   // overlong
}

TEST(Utf8, IncompleteSuffix) {
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xf0\x9f"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xf0\x9f\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xf0\x9f\x98\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xc3"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix(""), 0u);
}

}  // namespace
}  // namespace edgellm::engine
