// chat/tool_calls.h — tool calling in each model family's own format: the
// grammar that makes a reply's calls well-formed (names of the offered
// functions, arguments that match their parameters schema), and the parser
// that takes the calls back out of the reply's text.
//
// Formats, found from the chat template:
//   hermes       <tool_call>{"name": N, "arguments": {...}}</tool_call>   Hermes 2 Pro / 3, Qwen2.5, Qwen3
//   llama3       {"name": N, "parameters": {...}}                      Llama 3.1, 3.2, 3.3
//   mistral      [TOOL_CALLS][{"name": N, "arguments": {...}, "id": I}]  Mistral Nemo and its kin
//   functionary  <function=N>{...}</function>                           Functionary v3.1
//   generic      {"tool_calls": [{"name": N, "arguments": {...}}]} or {"response": "..."}
//                for templates that know no tools; the tools and this
//                format are described to the model in a system message.
#ifndef EDGELLM_CHAT_TOOL_CALLS_H_
#define EDGELLM_CHAT_TOOL_CALLS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace edgellm::chat {

enum class ToolCallFormat { kGeneric, kHermes, kLlama3, kMistral, kFunctionary };

ToolCallFormat DetectToolCallFormat(std::string_view template_source);
std::string_view ToolCallFormatName(ToolCallFormat format);

struct ToolChoice {
  enum class Mode { kAuto, kNone, kRequired, kNamed };
  Mode mode = Mode::kAuto;
  std::string name;  // kNamed
};

// OpenAI's `tools`: a list of {"type": "function", "function": {"name",
// "description"?, "parameters"?}}; InvalidArgument naming the entry.
absl::Status ValidateTools(const nlohmann::ordered_json& tools);
// OpenAI's `tool_choice`: "auto", "none", "required", or {"type":
// "function", "function": {"name": N}} naming one of `tools`.
absl::StatusOr<ToolChoice> ParseToolChoice(const nlohmann::ordered_json& choice, const nlohmann::ordered_json& tools);

struct ToolCallGrammar {
  std::string gbnf;
  // "" : the grammar holds from the reply's first token; else the reply is
  // free until this text, and the calls follow it (tool_choice auto).
  std::string trigger;
};

// The grammar of a reply to `tools` under `choice` (not kNone): one call, or
// with `parallel` one or more. InvalidArgument naming the function whose
// parameters schema cannot be enforced.
absl::StatusOr<ToolCallGrammar> ToolCallGrammarFor(ToolCallFormat format, const nlohmann::ordered_json& tools,
                                                   const ToolChoice& choice, bool parallel);

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // compact JSON text of an object
};

struct ParsedReply {
  std::string content;  // the reply without its calls (trimmed)
  std::vector<ToolCall> calls;  // ids left empty: the caller names them
};

// The calls in a reply of `format`; a reply without calls (or whose calls do
// not parse) is all content.
ParsedReply ParseToolCalls(ToolCallFormat format, std::string_view text);

// The messages as a template of `format` should see them: for the generic
// format, the tools and the reply format described in a system message (or,
// without `system_role`, at the start of the first user turn), earlier calls
// as the assistant's JSON and tool results as user turns; unchanged otherwise.
nlohmann::ordered_json MessagesForFormat(ToolCallFormat format, nlohmann::ordered_json messages,
                                         const nlohmann::ordered_json& tools, bool system_role = true);

// An id for a call: "call_" and 24 random hex digits, or 9 random letters
// and digits for mistral (its template accepts no other).
std::string NewToolCallId(ToolCallFormat format);

}  // namespace edgellm::chat

#endif  // EDGELLM_CHAT_TOOL_CALLS_H_
