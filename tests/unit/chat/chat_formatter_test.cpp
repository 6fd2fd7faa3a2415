#include "daemon/chat/chat_formatter.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/support/jinja2_reference.h"
#include "tests/support/test_support.h"

namespace edgellm::chat {
namespace {

using Json = nlohmann::ordered_json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(NormalizeMessages, NamesTheFieldThatIsWrong) {
  const struct {
    const char* json;
    const char* says;
  } cases[] = {
      {R"({"role": "user"})", "messages must be a list"},
      {R"([])", "messages is empty"},
      {R"([7])", "messages[0] must be an object"},
      {R"([{"content": "hi"}])", "messages[0].role must be a string"},
      {R"([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])", "messages[1].role 'robot' is not one of"},
      {R"([{"role": "user"}])", "messages[0].content is missing"},
      {R"([{"role": "user", "content": {"text": "hi"}}])", "messages[0].content must be a string, null or a list"},
      {R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])",
       "messages[0].content[0].type 'image_url' is not supported"},
      {R"([{"role": "user", "content": [{"type": "text"}]}])", "messages[0].content[0].text must be a string"},
      {R"([{"role": "user", "content": "hi", "name": 3}])", "messages[0].name must be a string"},
      {R"([{"role": "user", "content": "hi", "tool_calls": []}])", "messages[0].tool_calls is only for assistant"},
      {R"([{"role": "assistant", "content": null, "tool_calls": [{"function": {}}]}])",
       "messages[0].tool_calls[0].function.name must be a string"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Json> normalized = NormalizeMessages(Json::parse(c.json));
    ASSERT_FALSE(normalized.ok()) << c.json;
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(Message(normalized.status()).find(c.says), std::string::npos) << c.json << ": " << normalized.status();
  }
  std::vector<Json> many(kMaxMessages + 1, Json{{"role", "user"}, {"content", "x"}});
  EXPECT_FALSE(NormalizeMessages(Json(many)).ok());
}

TEST(NormalizeMessages, GivesTemplatesWhatTransformersGivesThem) {
  const Json in = Json::parse(R"([
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
    {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "21 C"}])");
  absl::StatusOr<Json> out = NormalizeMessages(in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0]["role"], "system");
  EXPECT_EQ((*out)[1]["content"], "one\ntwo");
  EXPECT_TRUE((*out)[2]["content"].is_null());
  EXPECT_EQ((*out)[2]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");
  EXPECT_EQ((*out)[3]["tool_call_id"], "c1");
}

TEST(ChatFormatter, RendersToolsAndToolCallsAsJinja2DoesWithTransformersSettings) {
  const std::string source = testing::SharedPath("chat-templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja");
  EDGELLM_REQUIRE_SHARED_FILE(source);
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "The weather in a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  const Json messages = Json::parse(R"([
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Paris? ☀️"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "21 C"}])");
  absl::StatusOr<ChatFormatter> formatter = ChatFormatter::Create(ReadAll(source), "<s>", "</s>", false);
  ASSERT_TRUE(formatter.ok()) << formatter.status();
  absl::StatusOr<std::string> got = formatter->Render(messages, tools, true);
  ASSERT_TRUE(got.ok()) << got.status();
  const Json context = {{"messages", *NormalizeMessages(messages)},
                        {"tools", tools},
                        {"add_generation_prompt", true},
                        {"bos_token", "<s>"},
                        {"eos_token", "</s>"}};
  EXPECT_EQ(*got, testing::Jinja2Renders(source, context, testing::TestDir()));
  EXPECT_NE(got->find("get_weather"), std::string::npos);
}

TEST(ChatFormatter, DropsALeadingBosTheTokenizerAddsAndKeepsOneItDoesNot) {
  const std::string source = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}";
  const Json messages = Json::parse(R"([{"role": "user", "content": "hi"}])");
  absl::StatusOr<ChatFormatter> stripping = ChatFormatter::Create(source, "<s>", "</s>", true);
  absl::StatusOr<ChatFormatter> keeping = ChatFormatter::Create(source, "<s>", "</s>", false);
  ASSERT_TRUE(stripping.ok() && keeping.ok());
  EXPECT_EQ(*stripping->Render(messages, nullptr, false), "[user] hi");
  EXPECT_EQ(*keeping->Render(messages, nullptr, false), "<s>[user] hi");
}

TEST(ChatFormatter, OffersStrftimeNowAndReportsTemplateErrorsAsBadRequests) {
  absl::StatusOr<ChatFormatter> dated = ChatFormatter::Create("{{ strftime_now('%Y') }}", "", "", false);
  ASSERT_TRUE(dated.ok());
  absl::StatusOr<std::string> year = dated->Render(Json::parse(R"([{"role": "user", "content": "x"}])"), nullptr, true);
  ASSERT_TRUE(year.ok()) << year.status();
  EXPECT_EQ(year->size(), 4u);
  EXPECT_GE(std::stoi(*year), 2024);

  absl::StatusOr<ChatFormatter> broken = ChatFormatter::Create("{% for m in messages %}", "", "", false);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(broken.status()).find("the chat template"), std::string::npos);

  absl::StatusOr<ChatFormatter> strict = ChatFormatter::Create(
      "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}",
      "", "", false);
  ASSERT_TRUE(strict.ok());
  absl::StatusOr<std::string> refused =
      strict->Render(Json::parse(R"([{"role": "assistant", "content": "x"}])"), nullptr, true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(refused.status()).find("Conversations must start with the user"), std::string::npos);
  EXPECT_EQ(strict->Render(Json::parse(R"([{"role": "user", "content": "x"}])"), Json::object(), true).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "tools must be a list";
}

}  // namespace
}  // namespace edgellm::chat
