// libFuzzer target: arbitrary bytes as the body of an OpenAI-style request
// (chat completion, completion, embeddings), and the messages of any chat
// request that parses, checked and rendered through a chat template, and its
// output form (response_format, grammar, json_schema, tools) turned into the
// grammar the engine would enforce, in each tool-call format: a grammar it
// makes must parse. Any other result is fine; a crash, a hang or unbounded
// memory is not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/chat/chat_formatter.h"
#include "daemon/grammar/gbnf_parser.h"
#include "daemon/serve/openai_requests.h"
#include "daemon/serve/structured_output.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* formatter = new edgellm::chat::ChatFormatter(*edgellm::chat::ChatFormatter::Create(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | tojson }}"
      "{% endif %}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
      "{% if add_generation_prompt %}<|assistant|>{% endif %}",
      "<s>", "</s>", true));
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto chat = edgellm::serve::ParseChatCompletionRequest(body);
  if (chat.ok()) {
    (void)formatter->Render(chat->messages, chat->generation.form.tools, true);
    for (auto format : {edgellm::chat::ToolCallFormat::kGeneric, edgellm::chat::ToolCallFormat::kHermes,
                        edgellm::chat::ToolCallFormat::kMistral}) {
      edgellm::serve::CompletionParams params;
      if (!edgellm::serve::ApplyOutputForm(chat->generation.form, format, params).ok() || params.grammar.empty()) {
        continue;
      }
      // Grammars written here (schemas, tool calls) must parse; a user's own GBNF may not.
      const absl::StatusOr<edgellm::grammar::GrammarRules> rules = edgellm::grammar::ParseGbnf(params.grammar);
      if (!rules.ok() && !chat->generation.form.grammar &&
          rules.status().code() != absl::StatusCode::kResourceExhausted) {
        std::abort();
      }
    }
  }
  (void)edgellm::serve::ParseCompletionRequest(body);
  (void)edgellm::serve::ParseEmbeddingsRequest(body);
  return 0;
}
