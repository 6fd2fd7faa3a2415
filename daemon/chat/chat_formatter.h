// chat/chat_formatter.h — a conversation as the prompt a model was trained
// on: the messages of a chat request, checked and rendered through the
// model's chat template the way transformers' apply_chat_template renders it
// (trim_blocks and lstrip_blocks on; messages, tools, add_generation_prompt,
// bos_token, eos_token and strftime_now as variables).
#ifndef EDGELLM_CHAT_CHAT_FORMATTER_H_
#define EDGELLM_CHAT_CHAT_FORMATTER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "daemon/chat/tool_calls.h"
#include "nlohmann/json.hpp"

namespace edgellm::chat {

namespace jinja {
class Template;
}

// The most messages one conversation may hold.
inline constexpr size_t kMaxMessages = 4096;

// The messages of an OpenAI-style request as templates expect them, or
// InvalidArgument naming the field ("messages[2].role ..."): a non-empty
// array of objects whose `role` is system, developer (taken as system),
// user, assistant or tool, whose `content` is a string, null (an assistant
// turn with tool_calls) or a list of {"type": "text", "text": ...} parts
// (joined by newlines); `name` and `tool_call_id` strings; an assistant's
// `tool_calls` a list of {"type": "function", "function": {"name",
// "arguments"}}, whose JSON `arguments` string becomes the object templates
// print (unless `arguments_as_objects` is false: the template prints the text).
absl::StatusOr<nlohmann::ordered_json> NormalizeMessages(const nlohmann::ordered_json& messages,
                                                         bool arguments_as_objects = true);

// Immutable once created; Render may run on many threads at once.
class ChatFormatter {
 public:
  // `source` is the model's tokenizer.chat_template (or its override);
  // `bos_token` and `eos_token` are the texts of those tokens. With
  // `strip_leading_bos`, a rendered prompt that begins with bos_token loses
  // it, for a tokenizer that adds BOS itself. InvalidArgument, naming the
  // line, for a template the interpreter cannot parse.
  static absl::StatusOr<ChatFormatter> Create(std::string_view source, std::string bos_token,
                                              std::string eos_token, bool strip_leading_bos);

  // The prompt for `messages` (NormalizeMessages first) with the optional
  // `tools` (a JSON array of OpenAI tool definitions, or null); with
  // `add_generation_prompt`, the text that opens the assistant's reply.
  // InvalidArgument for bad messages, or with the template's own words when
  // it refuses the conversation (raise_exception) or fails on it.
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                     bool add_generation_prompt) const;

  // How the model writes tool calls, as its template shows it.
  ToolCallFormat tool_call_format() const { return tool_call_format_; }

 private:
  ChatFormatter(std::shared_ptr<const jinja::Template> chat_template, std::string bos_token, std::string eos_token,
                bool strip_leading_bos, ToolCallFormat tool_call_format);

  std::shared_ptr<const jinja::Template> template_;
  ToolCallFormat tool_call_format_;
  std::string bos_token_;
  std::string eos_token_;
  bool strip_leading_bos_;
};

}  // namespace edgellm::chat

#endif  // EDGELLM_CHAT_CHAT_FORMATTER_H_
