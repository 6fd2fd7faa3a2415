#include "daemon/engine/text_streamer.h"

#include <gtest/gtest.h>

namespace edgellm::engine {
namespace {

TEST(TextStreamer, PassesTextThroughWithoutStops) {
  TextStreamer s({});
  EXPECT_EQ(s.Push("Hello"), "Hello");
  EXPECT_EQ(s.Push(" world"), " world");
  EXPECT_EQ(s.Flush(), "");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStreamer, HoldsBackAPartialCharacter) {
  TextStreamer s({});
  EXPECT_EQ(s.Push("caf\xc3"), "caf");
  EXPECT_EQ(s.Push("\xa9!"), "\xc3\xa9!");
  EXPECT_EQ(s.Push("\xf0\x9f"), "");
  EXPECT_EQ(s.Push("\x98\x80"), "\xf0\x9f\x98\x80");
}

TEST(TextStreamer, StopStringSplitAcrossPiecesIsNeverShown) {
  TextStreamer s({"\nUser:"});
  EXPECT_EQ(s.Push("Sure.\nU"), "Sure.");
  EXPECT_EQ(s.Push("se"), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Push("r: hi"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.Push("more"), "");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamer, AFalseStartIsReleased) {
  TextStreamer s({"STOP"});
  EXPECT_EQ(s.Push("ST"), "");
  EXPECT_EQ(s.Push("AR"), "STAR");
  EXPECT_EQ(s.Push("S"), "");
  EXPECT_EQ(s.Flush(), "S");
}

TEST(TextStreamer, EarliestOfSeveralStopsWins) {
  TextStreamer s({"cd", "b"});
  EXPECT_EQ(s.Push("abcd"), "a");
  EXPECT_TRUE(s.stopped());
}

}  // namespace
}  // namespace edgellm::engine
