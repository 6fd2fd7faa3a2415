#include "common/log_text.h"

#include <gtest/gtest.h>

namespace edgellm {
namespace {

TEST(LogText, NoDeviceStringCanForgeALineOrDriveATerminal) {
  EXPECT_EQ(LogText("ok"), "ok");
  EXPECT_EQ(LogText("a\nmodel m: round 9 closed"), "a\\nmodel m: round 9 closed");
  EXPECT_EQ(LogText("\x1b[2J\r\t\\"), "\\x1b[2J\\r\\t\\\\");
  EXPECT_EQ(LogText(std::string("nul\0byte", 8)), "nul\\x00byte");
  EXPECT_EQ(LogText("caf\xc3\xa9"), "caf\\xc3\\xa9");
  EXPECT_EQ(LogText(std::string(300, 'x'), 10), std::string(10, 'x') + "…(290 more bytes)");
}

}  // namespace
}  // namespace edgellm
