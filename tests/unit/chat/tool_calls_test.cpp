#include "daemon/chat/tool_calls.h"

#include <gtest/gtest.h>

namespace edgellm::chat {
namespace {

using Json = nlohmann::ordered_json;

// Request JSON with members of the wrong type: an error, never an exception
// (one escaping the HTTP handler would end the daemon).
TEST(ToolCalls, MembersOfTheWrongTypeAreRefusedNotThrown) {
  // What the fuzzer found: "type" an object where a string belongs.
  const Json tools = Json::parse(
      R"([{"type": {"name": "get_weather", "parameters": {"/type": "object", "propered": ["city"]}}}])");
  absl::Status status;
  EXPECT_NO_THROW(status = ValidateTools(tools));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("tools[0] must be"), std::string::npos) << status;
  for (const char* choice : {R"({"type": 5})", R"({"type": "function", "function": 7})", R"([1])"}) {
    absl::StatusOr<ToolChoice> parsed;
    EXPECT_NO_THROW(parsed = ParseToolChoice(Json::parse(choice), tools)) << choice;
    EXPECT_FALSE(parsed.ok()) << choice;
  }
  const Json good = Json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_TRUE(ValidateTools(good).ok());
  // Earlier turns of a conversation, each member of a wrong type.
  const Json messages = Json::parse(R"([
      {"role": 5, "content": "x"},
      {"role": "assistant", "tool_calls": [{"function": "not an object"}, 3, {"function": {"name": {}, "arguments": 9}}]},
      {"role": "tool", "tool_call_id": ["x"], "content": {"a": 1}},
      {"role": "user", "content": [{"type": "text", "text": "parts"}]}])");
  Json shown;
  EXPECT_NO_THROW(shown = MessagesForFormat(ToolCallFormat::kGeneric, messages, good));
  ASSERT_TRUE(shown.is_array());
  EXPECT_EQ(shown[0]["role"], "system");  // the tools' instructions, as the template should see them
}

}  // namespace
}  // namespace edgellm::chat
