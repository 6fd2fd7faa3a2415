#include "daemon/serve/structured_output.h"

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/grammar/json_schema.h"

namespace edgellm::serve {

absl::StatusOr<std::optional<ToolCallSetup>> ApplyOutputForm(const OutputForm& form, chat::ToolCallFormat format,
                                                              CompletionParams& params) {
  const int asked = static_cast<int>(form.grammar.has_value()) + static_cast<int>(form.json_schema.has_value()) +
                    static_cast<int>(form.json_object);
  if (asked > 1) return absl::InvalidArgumentError("grammar, json_schema and response_format exclude each other");
  const bool tools = form.tools.is_array() && !form.tools.empty() &&
                     form.tool_choice.mode != chat::ToolChoice::Mode::kNone;
  if (!form.tools.is_null()) EDGELLM_RETURN_IF_ERROR(chat::ValidateTools(form.tools));
  if (tools && asked > 0) {
    return absl::InvalidArgumentError(
        "tools cannot be combined with a grammar, json_schema or response_format (unless tool_choice is 'none')");
  }
  if (form.grammar) {
    if (form.grammar->empty()) return absl::InvalidArgumentError("grammar is empty");
    params.grammar = *form.grammar;
  } else if (form.json_schema) {
    absl::StatusOr<std::string> gbnf = grammar::JsonSchemaToGbnf(*form.json_schema);
    if (!gbnf.ok()) {
      std::string message(gbnf.status().message());
      if (form.json_schema_field != "json_schema" && message.rfind("json_schema", 0) == 0) {
        message = form.json_schema_field + message.substr(std::string_view("json_schema").size());
      }
      return absl::Status(gbnf.status().code(), message);
    }
    params.grammar = *std::move(gbnf);
  } else if (form.json_object) {
    params.grammar = grammar::JsonObjectGbnf();
  }
  if (!tools) return std::optional<ToolCallSetup>();
  EDGELLM_ASSIGN_OR_RETURN(chat::ToolCallGrammar calls,
                           chat::ToolCallGrammarFor(format, form.tools, form.tool_choice, form.parallel_tool_calls));
  params.grammar = std::move(calls.gbnf);
  params.grammar_trigger = calls.trigger;
  return std::optional<ToolCallSetup>(ToolCallSetup{format, std::move(calls.trigger)});
}

std::string ToolCallReply::Push(std::string_view text) {
  held_ += text;
  if (triggered_ || setup_.trigger.empty()) return "";
  const std::string& trigger = setup_.trigger;
  std::string shown;
  if (const size_t at = held_.find(trigger); at != std::string::npos) {
    triggered_ = true;
    shown = held_.substr(0, at);
    held_.erase(0, at);
  } else {
    // Hold back the longest tail that could still grow into the trigger.
    size_t keep = std::min(held_.size(), trigger.size() - 1);
    while (keep > 0 && held_.compare(held_.size() - keep, keep, trigger, 0, keep) != 0) --keep;
    shown = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
  }
  return shown;
}

ToolCallReply::Final ToolCallReply::Finish() {
  Final out;
  chat::ParsedReply parsed = chat::ParseToolCalls(setup_.format, held_);
  held_.clear();
  // Content before the calls was shown already; what is left is the rest.
  out.content = std::move(parsed.content);
  for (chat::ToolCall& call : parsed.calls) {
    call.id = chat::NewToolCallId(setup_.format);
    out.calls.push_back(std::move(call));
  }
  return out;
}

}  // namespace edgellm::serve
