// libFuzzer target: arbitrary bytes as a chat template (a GGUF file's
// tokenizer.chat_template is untrusted), parsed with both whitespace modes
// and rendered for a conversation with tools. Any result is fine; a crash,
// a hang or unbounded memory is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/chat/jinja_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const edgellm::chat::jinja::Value kConversation = edgellm::chat::jinja::Value::FromJson(
      nlohmann::ordered_json::parse(R"({"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                   "properties": {"x": {"type": "string"}}}}}],
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u é"},
                     {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": "f", "arguments": {"x": "1"}}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})"));
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  for (const bool hf : {false, true}) {
    edgellm::chat::jinja::ParseOptions options;
    options.trim_blocks = options.lstrip_blocks = hf;
    auto parsed = edgellm::chat::jinja::Template::Parse(source, options);
    if (parsed.ok()) (void)parsed->Render(kConversation);
  }
  return 0;
}
