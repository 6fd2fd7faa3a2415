#include "daemon/serve/openai_requests.h"

#include <gtest/gtest.h>

namespace edgellm::serve {
namespace {

TEST(OpenAiRequests, AChatRequestCarriesEverySettingItNames) {
  absl::StatusOr<ChatCompletionRequest> r = ParseChatCompletionRequest(R"({
      "model": "smol:pirate", "messages": [{"role": "user", "content": "hi"}],
      "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 33, "stop": "\n\n", "seed": -7, "n": 1,
      "logprobs": true, "top_logprobs": 4, "stream": true, "stream_options": {"include_usage": true},
      "user": "app-1", "top_k": 12, "min_p": 0.1, "repeat_penalty": 1.2, "frequency_penalty": 0,
      "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
      "response_format": {"type": "text"}, "something_new": {"ignored": true}})");
  ASSERT_TRUE(r.ok()) << r.status();
  const CompletionParams& p = r->generation.params;
  EXPECT_EQ(r->generation.model, "smol:pirate");
  EXPECT_EQ(p.model, "smol");
  EXPECT_EQ(p.adapter, "pirate");
  EXPECT_FLOAT_EQ(*p.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*p.top_p, 0.9f);
  EXPECT_EQ(*p.max_tokens, 33u);
  EXPECT_EQ(p.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(*p.seed, static_cast<uint64_t>(-7));
  EXPECT_EQ(p.top_logprobs, 4);
  EXPECT_EQ(*p.top_k, 12u);
  EXPECT_FLOAT_EQ(*p.min_p, 0.1f);
  EXPECT_FLOAT_EQ(*p.repeat_penalty, 1.2f);
  EXPECT_TRUE(r->generation.stream);
  EXPECT_TRUE(r->generation.include_usage);
  EXPECT_TRUE(r->generation.form.tools.is_array());

  absl::StatusOr<ChatCompletionRequest> plain =
      ParseChatCompletionRequest(R"({"messages": [], "tools": [], "tool_choice": "none", "logprobs": false})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->generation.params.max_tokens.has_value());
  EXPECT_EQ(plain->generation.params.top_logprobs, -1);
  EXPECT_EQ(plain->generation.form.tool_choice.mode, chat::ToolChoice::Mode::kNone);
}

TEST(OpenAiRequests, ResponseFormatsToolsAndGrammarsAreRead) {
  absl::StatusOr<ChatCompletionRequest> schema = ParseChatCompletionRequest(
      R"({"messages": [], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true,
          "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}})");
  ASSERT_TRUE(schema.ok()) << schema.status();
  ASSERT_TRUE(schema->generation.form.json_schema.has_value());
  EXPECT_EQ((*schema->generation.form.json_schema)["properties"]["a"]["type"], "integer");
  EXPECT_EQ(schema->generation.form.json_schema_field, "response_format.json_schema.schema");
  absl::StatusOr<ChatCompletionRequest> object =
      ParseChatCompletionRequest(R"({"messages": [], "response_format": {"type": "json_object"}})");
  ASSERT_TRUE(object.ok());
  EXPECT_TRUE(object->generation.form.json_object);
  absl::StatusOr<ChatCompletionRequest> tools = ParseChatCompletionRequest(
      R"({"messages": [], "tools": [{"type": "function", "function": {"name": "get_weather",
          "parameters": {"type": "object"}}}], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
          "parallel_tool_calls": false})");
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_EQ(tools->generation.form.tool_choice.mode, chat::ToolChoice::Mode::kNamed);
  EXPECT_EQ(tools->generation.form.tool_choice.name, "get_weather");
  EXPECT_FALSE(tools->generation.form.parallel_tool_calls);
  absl::StatusOr<CompletionRequest> grammar = ParseCompletionRequest(R"({"prompt": "x", "grammar": "root ::= \"a\""})");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  EXPECT_EQ(*grammar->generation.form.grammar, "root ::= \"a\"");
}

TEST(OpenAiRequests, EachMistakeNamesItsField) {
  const struct {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"messages": [], "temperature": "warm"})", "temperature"},
      {R"({"messages": [], "temperature": 1e300})", "temperature"},
      {R"({"messages": [], "max_tokens": -1})", "max_tokens"},
      {R"({"messages": [], "max_tokens": 18446744073709551615})", "max_tokens"},
      {R"({"messages": [], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [], "n": 2})", "n"},
      {R"({"messages": [], "stop": 4})", "stop"},
      {R"({"messages": [], "stream": "yes"})", "stream"},
      {R"({"messages": [], "stream_options": []})", "stream_options"},
      // A member of the wrong type where the code once read it unchecked (found by the fuzzer).
      {R"({"messages": [], "response_format": {"type": 3935394151953}})", "response_format"},
      {R"({"messages": [], "tools": [{"type": {"name": "f"}}]})", "tools"},
      {R"({"messages": [], "logprobs": true, "top_logprobs": 21})", "top_logprobs"},
      {R"({"messages": [], "presence_penalty": 0.5})", "presence_penalty"},
      {R"({"messages": [], "tool_choice": "required"})", "tool_choice"},
      {R"({"messages": [], "response_format": {"type": "xml"}})", "response_format"},
      {R"({"messages": [], "response_format": {"type": "json_schema", "json_schema": {"schema": 3}}})", "response_format"},
      {R"({"messages": [], "tools": [{"type": "function", "function": {"name": "a b"}}]})", "tools"},
      {R"({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}],
           "tool_choice": {"type": "function", "function": {"name": "g"}}})", "tool_choice"},
      {R"({"messages": [], "grammar": 5})", "grammar"},
      {R"({"messages": [], "json_schema": "x"})", "json_schema"},
      {R"({"messages": [], "parallel_tool_calls": 1})", "parallel_tool_calls"},
      {R"({"messages": [], "model": 7})", "model"},
      {R"({"messages": [], "user": 7})", "user"},
      {R"({})", "messages"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ChatCompletionRequest> r = ParseChatCompletionRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ParamOf(std::string(r.status().message())), c.param) << c.body << ": " << r.status();
  }
  EXPECT_EQ(ParseChatCompletionRequest("not json").status().code(), absl::StatusCode::kInvalidArgument);
  // A schema nested beyond reason would take a thread's stack to copy: refused before it is parsed.
  const std::string deep = R"({"prompt": "x", "json_schema": {"const": )" + std::string(200000, '[') +
                           std::string(200000, ']') + "}}";
  EXPECT_EQ(ParseCompletionRequest(deep).status().message(), "the body nests deeper than 128 levels");
  EXPECT_EQ(ParamOf("the body is not valid JSON"), "");
  EXPECT_EQ(ParamOf("messages[3].role 'x' is not one of"), "messages[3].role");
}

TEST(OpenAiRequests, CompletionsAndEmbeddingsTakeTheirOwnFields) {
  absl::StatusOr<CompletionRequest> c =
      ParseCompletionRequest(R"({"prompt": ["Once upon"], "logprobs": 2, "max_tokens": 5, "stop": ["a", "b"]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->prompt, "Once upon");
  EXPECT_TRUE(c->generation.logprobs);
  EXPECT_EQ(c->generation.params.top_logprobs, 2);
  EXPECT_EQ(c->generation.params.stop.size(), 2u);
  EXPECT_EQ(ParamOf(std::string(ParseCompletionRequest(R"({"prompt": ["a", "b"]})").status().message())), "prompt");
  EXPECT_EQ(ParamOf(std::string(ParseCompletionRequest(R"({"prompt": "a", "echo": true})").status().message())), "echo");
  EXPECT_EQ(ParamOf(std::string(ParseCompletionRequest(R"({"prompt": "a", "best_of": 3})").status().message())),
            "best_of");

  absl::StatusOr<EmbeddingsRequest> e =
      ParseEmbeddingsRequest(R"({"input": ["a", "b"], "model": "m", "encoding_format": "base64"})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->inputs.size(), 2u);
  EXPECT_TRUE(e->base64);
  EXPECT_EQ(ParamOf(std::string(ParseEmbeddingsRequest(R"({"input": [1, 2]})").status().message())), "input");
  EXPECT_EQ(ParamOf(std::string(ParseEmbeddingsRequest(R"({"input": "a", "model": "m:x"})").status().message())),
            "model");
  EXPECT_EQ(ParamOf(std::string(ParseEmbeddingsRequest(R"({"input": "a", "dimensions": 8})").status().message())),
            "dimensions");
}

}  // namespace
}  // namespace edgellm::serve
