// Tool calls in the formats of the real chat templates in
// ../shared/chat-templates: each template's format is recognised, the grammar
// of that format takes a well-formed call and refuses others, the parser
// takes the call back out, and a conversation with the call and its result
// renders through the template for the next turn.
#include "daemon/chat/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "daemon/chat/chat_formatter.h"
#include "daemon/grammar/grammar_automaton.h"
#include "tests/support/test_support.h"

namespace edgellm::chat {
namespace {

using Json = nlohmann::ordered_json;

std::string Template(const std::string& name) {
  const std::string path = testing::SharedPath("chat-templates/" + name);
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const Json& Tools() {
  static const Json tools = Json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
        "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "set_temp",
      "parameters": {"type": "object", "properties": {"value": {"type": "integer", "minimum": 5, "maximum": 30}},
        "required": ["value"]}}}])");
  return tools;
}

bool GrammarAccepts(const std::string& gbnf, const std::string& text) {
  auto grammar = grammar::ByteGrammar::FromGbnf(gbnf);
  EXPECT_TRUE(grammar.ok()) << grammar.status() << "\n" << gbnf;
  if (!grammar.ok()) return false;
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  grammar::GrammarAutomaton automaton(*grammar, std::make_shared<grammar::TokenTrie>(bytes, std::vector<int32_t>{}));
  const grammar::StateId end = automaton.Advance(automaton.Start().value(), text).value();
  return end != grammar::kDeadState && automaton.Accepting(end);
}

struct FormatCase {
  const char* template_file;
  ToolCallFormat format;
  const char* call;        // one call to get_weather as the model writes it
  const char* wrong_call;  // the same with an argument the schema refuses
};

const FormatCase kCases[] = {
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", ToolCallFormat::kHermes,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}\n</tool_call>",
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\"}}\n</tool_call>"},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", ToolCallFormat::kHermes,
     "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>",
     "<tool_call>{\"name\": \"get_wether\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"},
    {"Qwen-Qwen2.5-7B-Instruct.jinja", ToolCallFormat::kHermes,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 7}}\n</tool_call>"},
    {"meta-llama-Llama-3.1-8B-Instruct.jinja", ToolCallFormat::kLlama3,
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}",
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"unit\": \"kelvin\"}}"},
    {"meta-llama-Llama-3.2-3B-Instruct.jinja", ToolCallFormat::kLlama3,
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
     "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"},
    {"meta-llama-Llama-3.3-70B-Instruct.jinja", ToolCallFormat::kLlama3,
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"when\": 1}}"},
    {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ToolCallFormat::kMistral,
     "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}]",
     "[{\"name\": \"get_weather\", \"arguments\": {}}]"},
    {"meetkai-functionary-medium-v3.1.jinja", ToolCallFormat::kFunctionary,
     "<function=get_weather>{\"city\": \"Oslo\"}</function>", "<function=get_weather>{\"town\": \"Oslo\"}</function>"},
    {"google-gemma-2-2b-it.jinja", ToolCallFormat::kGeneric,
     "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}]}",
     "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"" 
     "Oslo is a city whose name is long\"}}]}"},
    {"microsoft-Phi-3.5-mini-instruct.jinja", ToolCallFormat::kGeneric,
     "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}]}",
     "{\"tool_calls\": []}"},
};

TEST(ToolCallFormats, EachTemplatesFormatIsRecognisedEnforcedAndParsed) {
  EDGELLM_REQUIRE_SHARED_FILE(testing::SharedPath("chat-templates/README.md"));
  ToolChoice required;
  required.mode = ToolChoice::Mode::kRequired;
  for (const FormatCase& c : kCases) {
    SCOPED_TRACE(c.template_file);
    const std::string source = Template(c.template_file);
    ASSERT_FALSE(source.empty());
    EXPECT_EQ(DetectToolCallFormat(source), c.format) << ToolCallFormatName(DetectToolCallFormat(source));
    absl::StatusOr<ToolCallGrammar> grammar = ToolCallGrammarFor(c.format, Tools(), required, /*parallel=*/true);
    ASSERT_TRUE(grammar.ok()) << grammar.status();
    EXPECT_TRUE(grammar->trigger.empty()) << "required: the grammar holds from the first token";
    EXPECT_TRUE(GrammarAccepts(grammar->gbnf, c.call)) << c.call;
    EXPECT_FALSE(GrammarAccepts(grammar->gbnf, c.wrong_call)) << c.wrong_call;
    EXPECT_FALSE(GrammarAccepts(grammar->gbnf, "I would rather chat.")) << "required means a call";
    const ParsedReply parsed = ParseToolCalls(c.format, c.call);
    ASSERT_EQ(parsed.calls.size(), 1u);
    EXPECT_EQ(parsed.calls[0].name, "get_weather");
    EXPECT_EQ(Json::parse(parsed.calls[0].arguments).at("city"), "Oslo");
    EXPECT_EQ(parsed.content, "");

    // Auto: prose is free until the format's trigger (or, generic, a response).
    absl::StatusOr<ToolCallGrammar> auto_grammar = ToolCallGrammarFor(c.format, Tools(), ToolChoice{}, true);
    ASSERT_TRUE(auto_grammar.ok());
    if (c.format == ToolCallFormat::kGeneric) {
      EXPECT_TRUE(GrammarAccepts(auto_grammar->gbnf, R"({"response": "Hello!"})"));
      EXPECT_EQ(ParseToolCalls(c.format, R"({"response": "Hello!"})").content, "Hello!");
    } else {
      ASSERT_FALSE(auto_grammar->trigger.empty());
      EXPECT_EQ(std::string(c.call).find(auto_grammar->trigger), 0u) << "a call begins with the trigger";
      const ParsedReply mixed = ParseToolCalls(c.format, std::string("Let me look. ") + c.call);
      ASSERT_EQ(mixed.calls.size(), 1u);
      EXPECT_EQ(mixed.content, "Let me look.");
    }
    // A named function: only that one.
    ToolChoice named;
    named.mode = ToolChoice::Mode::kNamed;
    named.name = "set_temp";
    absl::StatusOr<ToolCallGrammar> only = ToolCallGrammarFor(c.format, Tools(), named, false);
    ASSERT_TRUE(only.ok());
    EXPECT_FALSE(GrammarAccepts(only->gbnf, c.call)) << "get_weather is not the named function";
  }
}

TEST(ToolCallFormats, ParallelCallsAreTakenApartInOrder) {
  const ParsedReply hermes = ParseToolCalls(
      ToolCallFormat::kHermes,
      "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": [2]}\"}\n</tool_call>");
  ASSERT_EQ(hermes.calls.size(), 2u);
  EXPECT_EQ(hermes.calls[0].name, "a");
  EXPECT_EQ(hermes.calls[1].arguments, R"({"y":[2]})");
  const ParsedReply mistral =
      ParseToolCalls(ToolCallFormat::kMistral, R"([TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"z": true}}])");
  ASSERT_EQ(mistral.calls.size(), 2u);
  EXPECT_EQ(mistral.calls[1].arguments, R"({"z":true})");
  EXPECT_EQ(mistral.content, "");
  const ParsedReply functionary = ParseToolCalls(
      ToolCallFormat::kFunctionary, "<function=a>{\"q\": \"}\"}</function><function=b>{}</function>");
  ASSERT_EQ(functionary.calls.size(), 2u);
  EXPECT_EQ(functionary.calls[0].arguments, R"({"q":"}"})");
  // What does not parse is content, not a call.
  EXPECT_TRUE(ParseToolCalls(ToolCallFormat::kLlama3, "{\"name\": broken").calls.empty());
  EXPECT_EQ(ParseToolCalls(ToolCallFormat::kHermes, "<tool_call>{oops}</tool_call>").content,
            "<tool_call>{oops}</tool_call>");
  // Calls cut short at max_tokens: the complete ones stand, the rest is content.
  const ParsedReply cut = ParseToolCalls(
      ToolCallFormat::kHermes, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b");
  ASSERT_EQ(cut.calls.size(), 1u);
  EXPECT_EQ(cut.content, "<tool_call>{\"name\": \"b");
  EXPECT_EQ(NewToolCallId(ToolCallFormat::kMistral).size(), 9u);
}

TEST(ToolCallFormats, ACallAndItsResultRenderThroughEveryTemplateForTheNextTurn) {
  EDGELLM_REQUIRE_SHARED_FILE(testing::SharedPath("chat-templates/README.md"));
  for (const FormatCase& c : kCases) {
    SCOPED_TRACE(c.template_file);
    absl::StatusOr<ChatFormatter> formatter = ChatFormatter::Create(Template(c.template_file), "<s>", "</s>", false);
    ASSERT_TRUE(formatter.ok()) << formatter.status();
    const std::string id = NewToolCallId(c.format);
    Json messages = Json::array({
        {{"role", "user"}, {"content", "Weather in Oslo?"}},
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls", Json::array({{{"id", id},
                                      {"type", "function"},
                                      {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Oslo"})"}}}}})}},
        {{"role", "tool"}, {"tool_call_id", id}, {"name", "get_weather"}, {"content", "-3 degrees, snow"}},
    });
    absl::StatusOr<std::string> prompt =
        formatter->Render(MessagesForFormat(c.format, messages, Tools()), Tools(), true);
    if (!prompt.ok() && c.format == ToolCallFormat::kGeneric) {
      // Gemma's template takes no system turn: the tools go in the first user turn.
      prompt = formatter->Render(MessagesForFormat(c.format, messages, Tools(), /*system_role=*/false), Tools(), true);
    }
    ASSERT_TRUE(prompt.ok()) << prompt.status();
    EXPECT_NE(prompt->find("Oslo\""), std::string::npos) << "the call's arguments are in the prompt:\n" << *prompt;
    EXPECT_NE(prompt->find("-3 degrees, snow"), std::string::npos) << "the result is in the prompt:\n" << *prompt;
    EXPECT_NE(prompt->find("get_weather"), std::string::npos) << *prompt;
  }
}

}  // namespace
}  // namespace edgellm::chat
