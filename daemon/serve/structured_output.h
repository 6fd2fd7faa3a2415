// serve/structured_output.h — the form a request asks its output to take (a
// GBNF grammar, a JSON Schema, any JSON object, or calls to offered tools),
// checked and turned into the grammar the engine enforces; and, for tool
// calls, the reply taken apart as it streams: content shown as it comes,
// calls held back and parsed at the end. Shared by the gRPC and OpenAI front
// ends; no I/O.
#ifndef EDGELLM_SERVE_STRUCTURED_OUTPUT_H_
#define EDGELLM_SERVE_STRUCTURED_OUTPUT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/chat/tool_calls.h"
#include "daemon/serve/completion_params.h"
#include "nlohmann/json.hpp"

namespace edgellm::serve {

struct OutputForm {
  std::optional<std::string> grammar;                  // GBNF
  std::optional<nlohmann::ordered_json> json_schema;   // a JSON Schema
  std::string json_schema_field = "json_schema";       // how the request names it, for errors
  bool json_object = false;                            // any JSON object
  nlohmann::ordered_json tools = nullptr;              // OpenAI tool definitions
  chat::ToolChoice tool_choice;
  bool parallel_tool_calls = true;
};

// What a reply with tools needs to be taken apart.
struct ToolCallSetup {
  chat::ToolCallFormat format = chat::ToolCallFormat::kGeneric;
  std::string trigger;
};

// Sets params.grammar (and its trigger) for `form`. The tool call setup when
// the reply may hold calls (tools offered and tool_choice not none).
// InvalidArgument naming the field: a bad grammar, schema or tool list, or
// more than one form asked for at once.
absl::StatusOr<std::optional<ToolCallSetup>> ApplyOutputForm(const OutputForm& form, chat::ToolCallFormat format,
                                                              CompletionParams& params);

// A reply with tools as it streams. Not thread-safe.
class ToolCallReply {
 public:
  explicit ToolCallReply(ToolCallSetup setup) : setup_(std::move(setup)) {}

  // The content that may be shown now: the text before the calls, held back
  // only where it may be the start of them.
  std::string Push(std::string_view text);

  struct Final {
    std::string content;  // content not yet returned by Push
    std::vector<chat::ToolCall> calls;  // with their ids
  };
  Final Finish();

 private:
  const ToolCallSetup setup_;
  bool triggered_ = false;
  std::string held_;  // text that may begin the calls, or the calls themselves
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_STRUCTURED_OUTPUT_H_
