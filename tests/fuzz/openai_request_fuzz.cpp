// libFuzzer target: arbitrary bytes as the body of an OpenAI-style request
// (chat completion, completion, embeddings), and the messages of any chat
// request that parses, checked and rendered through a chat template. Any
// result is fine; a crash, a hang or unbounded memory is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/chat/chat_formatter.h"
#include "daemon/serve/openai_requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* formatter = new edgellm::chat::ChatFormatter(*edgellm::chat::ChatFormatter::Create(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | tojson }}"
      "{% endif %}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
      "{% if add_generation_prompt %}<|assistant|>{% endif %}",
      "<s>", "</s>", true));
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto chat = edgellm::serve::ParseChatCompletionRequest(body);
  if (chat.ok()) (void)formatter->Render(chat->messages, chat->tools, true);
  (void)edgellm::serve::ParseCompletionRequest(body);
  (void)edgellm::serve::ParseEmbeddingsRequest(body);
  return 0;
}
