#include "daemon/chat/tool_calls.h"

#include <cctype>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "common/json_depth.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/grammar/json_schema.h"

namespace edgellm::chat {
namespace {

using Json = nlohmann::ordered_json;

// The member `key` of `object`, or null when `object` is not an object or
// lacks it: request JSON is never trusted to have the types it should
// (nlohmann's value() and at() throw on a wrong one).
const Json& FieldOf(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// The string member `key` of `object`, or "" when it is absent or not a string.
std::string TextOf(const Json& object, const char* key) {
  const Json& value = FieldOf(object, key);
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::string_view Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// A JSON value in a reply; too deep a one is not a call (see json_depth.h).
std::optional<Json> ParseJson(std::string_view text) {
  if (JsonDepth(text) > kMaxJsonDepth) return std::nullopt;
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

// A call from {"name": N, "arguments" (or "parameters"): {...}}.
std::optional<ToolCall> CallOf(const Json& object) {
  if (!object.is_object()) return std::nullopt;
  auto name = object.find("name");
  if (name == object.end() || !name->is_string()) return std::nullopt;
  ToolCall call;
  call.name = name->get<std::string>();
  const Json* arguments = nullptr;
  for (const char* key : {"arguments", "parameters"}) {
    if (auto it = object.find(key); it != object.end()) arguments = &*it;
  }
  if (arguments == nullptr || arguments->is_null()) {
    call.arguments = "{}";
  } else if (arguments->is_string()) {
    std::optional<Json> parsed = ParseJson(arguments->get<std::string>());
    call.arguments = parsed ? parsed->dump() : arguments->get<std::string>();
  } else {
    call.arguments = arguments->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return call;
}

const Json& FunctionOf(const Json& tool) { return FieldOf(tool, "function"); }

std::string Join(const std::vector<std::string>& alternatives) {
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out + ")";
}

}  // namespace

ToolCallFormat DetectToolCallFormat(std::string_view source) {
  if (source.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kHermes;
  if (source.find("[TOOL_CALLS]") != std::string_view::npos) return ToolCallFormat::kMistral;
  if (source.find("<function=") != std::string_view::npos) return ToolCallFormat::kFunctionary;
  if (source.find("ipython") != std::string_view::npos || source.find("<|python_tag|>") != std::string_view::npos) {
    return ToolCallFormat::kLlama3;
  }
  return ToolCallFormat::kGeneric;
}

std::string_view ToolCallFormatName(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kGeneric: return "generic";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3: return "llama3";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kFunctionary: return "functionary";
  }
  return "generic";
}

absl::Status ValidateTools(const Json& tools) {
  if (tools.is_null()) return absl::OkStatus();
  if (!tools.is_array()) return absl::InvalidArgumentError("tools must be a list");
  if (tools.size() > 128) return absl::InvalidArgumentError("tools holds more than 128 functions");
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& tool = tools[i];
    const std::string where = edgellm::StrCat("tools[", i, "]");
    if (!tool.is_object() || TextOf(tool, "type") != "function") {
      return absl::InvalidArgumentError(where + " must be {\"type\": \"function\", \"function\": {...}}");
    }
    auto function = tool.find("function");
    if (function == tool.end() || !function->is_object()) {
      return absl::InvalidArgumentError(where + ".function must be an object");
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string() || name->get<std::string>().empty() ||
        name->get<std::string>().size() > 64) {
      return absl::InvalidArgumentError(where + ".function.name must be a name of 1 to 64 characters");
    }
    for (char c : name->get<std::string>()) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
        return absl::InvalidArgumentError(where + ".function.name may hold only letters, digits, '_', '-' and '.'");
      }
    }
    if (!names.insert(name->get<std::string>()).second) {
      return absl::InvalidArgumentError(edgellm::StrCat(where, ".function.name '", name->get<std::string>(),
                                                        "' is offered twice"));
    }
    if (auto parameters = function->find("parameters");
        parameters != function->end() && !parameters->is_object() && !parameters->is_null()) {
      return absl::InvalidArgumentError(where + ".function.parameters must be a JSON Schema object");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ToolChoice> ParseToolChoice(const Json& choice, const Json& tools) {
  ToolChoice out;
  if (choice.is_null()) return out;
  if (choice.is_string()) {
    const std::string mode = choice.get<std::string>();
    if (mode == "auto") return out;
    if (mode == "none") {
      out.mode = ToolChoice::Mode::kNone;
      return out;
    }
    if (mode == "required") {
      if (!tools.is_array() || tools.empty()) return absl::InvalidArgumentError("tool_choice 'required' needs tools");
      out.mode = ToolChoice::Mode::kRequired;
      return out;
    }
    return absl::InvalidArgumentError("tool_choice must be 'auto', 'none', 'required' or a named function");
  }
  const Json* name = nullptr;
  if (choice.is_object() && TextOf(choice, "type") == "function") {
    auto function = choice.find("function");
    if (function != choice.end() && function->is_object()) {
      auto it = function->find("name");
      if (it != function->end() && it->is_string()) name = &*it;
    }
  }
  if (name == nullptr) {
    return absl::InvalidArgumentError("tool_choice must be 'auto', 'none', 'required' or {\"type\": \"function\", "
                                      "\"function\": {\"name\": ...}}");
  }
  out.mode = ToolChoice::Mode::kNamed;
  out.name = name->get<std::string>();
  if (tools.is_array()) {
    for (const Json& tool : tools) {
      if (TextOf(FunctionOf(tool), "name") == out.name) return out;
    }
  }
  return absl::InvalidArgumentError(
      edgellm::StrCat("tool_choice names function '", out.name.substr(0, 64), "', which is not in tools"));
}

absl::StatusOr<ToolCallGrammar> ToolCallGrammarFor(ToolCallFormat format, const Json& tools, const ToolChoice& choice,
                                                   bool parallel) {
  // One rule per function: its name, then its arguments, as the format writes them.
  std::vector<std::string> lines;
  std::set<std::string> seen;
  const auto add_lines = [&](const std::string& grammar) {
    std::istringstream in(grammar);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && seen.insert(line).second) lines.push_back(line);
    }
  };
  std::vector<std::string> functions;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& function = FunctionOf(tools[i]);
    const std::string name = TextOf(function, "name");
    if (choice.mode == ToolChoice::Mode::kNamed && name != choice.name) continue;
    Json parameters = {{"type", "object"}};
    if (auto it = function.find("parameters"); it != function.end() && it->is_object()) parameters = *it;
    const std::string rule = edgellm::StrCat("f", i);
    absl::StatusOr<std::string> arguments = grammar::JsonSchemaToGbnf(parameters, {}, rule + "-arguments");
    if (!arguments.ok()) {
      return absl::Status(arguments.status().code(),
                          edgellm::StrCat("tools[", i, "].function.parameters: ", arguments.status().message()));
    }
    add_lines(*arguments);
    const std::string json_name = grammar::GbnfLiteral(Json(name).dump());
    std::string body;
    switch (format) {
      case ToolCallFormat::kFunctionary:
        body = grammar::GbnfLiteral(name + ">") + " " + rule + "-arguments";
        break;
      case ToolCallFormat::kLlama3:
        body = json_name + " \",\" ws \"\\\"parameters\\\":\" ws " + rule + "-arguments";
        break;
      default:
        body = json_name + " \",\" ws \"\\\"arguments\\\":\" ws " + rule + "-arguments";
    }
    lines.push_back(rule + " ::= " + body);
    functions.push_back(rule);
  }
  if (functions.empty()) return absl::InvalidArgumentError("tools: no function to call");
  add_lines(grammar::JsonObjectGbnf().substr(grammar::JsonObjectGbnf().find('\n') + 1));
  const std::string function = Join(functions);
  const std::string object_call = "\"{\" ws \"\\\"name\\\":\" ws " + function + " ws \"}\"";
  ToolCallGrammar out;
  const bool auto_mode = choice.mode == ToolChoice::Mode::kAuto;
  std::string root;
  switch (format) {
    case ToolCallFormat::kHermes:
      lines.push_back("call ::= \"<tool_call>\" \"\\n\"? " + object_call + " \"\\n\"? \"</tool_call>\"");
      root = parallel ? "call (\"\\n\"? call)*" : "call";
      if (auto_mode) out.trigger = "<tool_call>";
      break;
    case ToolCallFormat::kLlama3:
      root = object_call;
      if (auto_mode) out.trigger = "{\"name\"";
      break;
    case ToolCallFormat::kMistral:
      lines.push_back("call ::= " + object_call);
      root = parallel ? "\"[\" call (\",\" ws call)* \"]\"" : "\"[\" call \"]\"";
      if (auto_mode) out.trigger = "[{\"name\"";
      break;
    case ToolCallFormat::kFunctionary:
      lines.push_back("call ::= \"<function=\" " + function + " \"</function>\"");
      root = parallel ? "call+" : "call";
      if (auto_mode) out.trigger = "<function=";
      break;
    case ToolCallFormat::kGeneric: {
      lines.push_back("call ::= " + object_call);
      const std::string calls = parallel ? "call (\",\" ws call)*" : "call";
      root = "\"{\" ws \"\\\"tool_calls\\\":\" ws \"[\" " + calls + " \"]\" ws \"}\"";
      if (auto_mode) root += " | \"{\" ws \"\\\"response\\\":\" ws json-string ws \"}\"";
      break;
    }
  }
  out.gbnf = "root ::= " + root + "\n";
  for (const std::string& line : lines) out.gbnf += line + "\n";
  return out;
}

ParsedReply ParseToolCalls(ToolCallFormat format, std::string_view text) {
  ParsedReply reply;
  const auto all_content = [&] {
    ParsedReply r;
    r.content = std::string(Trim(text));
    return r;
  };
  switch (format) {
    case ToolCallFormat::kHermes: {
      size_t at = 0;
      std::string content;
      while (true) {
        const size_t open = text.find("<tool_call>", at);
        if (open == std::string_view::npos) break;
        content += text.substr(at, open - at);
        const size_t inner = open + std::strlen("<tool_call>");
        size_t close = text.find("</tool_call>", inner);
        const std::string_view body = text.substr(inner, close == std::string_view::npos ? text.size() - inner : close - inner);
        std::optional<Json> json = ParseJson(Trim(body));
        std::optional<ToolCall> call = json ? CallOf(*json) : std::nullopt;
        // A call that does not parse (or was cut short) ends the calls: it
        // and what follows stay content.
        if (!call) {
          at = open;
          break;
        }
        reply.calls.push_back(*std::move(call));
        at = close == std::string_view::npos ? text.size() : close + std::strlen("</tool_call>");
      }
      content += text.substr(at);
      reply.content = std::string(Trim(content));
      return reply;
    }
    case ToolCallFormat::kLlama3:
    case ToolCallFormat::kMistral: {
      // The first object (llama3) or list of objects (mistral) that reads as calls.
      // At most 32 places are tried, so prose full of brackets costs little.
      const bool mistral = format == ToolCallFormat::kMistral;
      size_t start = 0, end = 0;
      int tries = 0;
      for (start = text.find(mistral ? '[' : '{'); start != std::string_view::npos && tries++ < 32;
           start = text.find(mistral ? '[' : '{', start + 1)) {
        end = JsonValueEnd(text, start);
        if (end == std::string_view::npos) return all_content();
        std::optional<Json> json = ParseJson(text.substr(start, end - start));
        if (!json) continue;
        const Json list = mistral ? *json : Json::array({*json});
        if (!list.is_array()) continue;
        std::vector<ToolCall> calls;
        for (const Json& item : list) {
          std::optional<ToolCall> call = CallOf(item);
          if (!call) break;
          calls.push_back(*std::move(call));
        }
        if (!calls.empty() && calls.size() == list.size()) {
          reply.calls = std::move(calls);
          break;
        }
      }
      if (reply.calls.empty()) return all_content();
      std::string content(text.substr(0, start));
      if (mistral && Trim(content) == "[TOOL_CALLS]") content.clear();
      reply.content = std::string(Trim(content + std::string(text.substr(end))));
      return reply;
    }
    case ToolCallFormat::kFunctionary: {
      size_t at = 0;
      std::string content;
      while (true) {
        const size_t open = text.find("<function=", at);
        if (open == std::string_view::npos) break;
        content += text.substr(at, open - at);
        const size_t name_start = open + std::strlen("<function=");
        const size_t name_end = text.find('>', name_start);
        const size_t args_end = name_end == std::string_view::npos ? name_end : JsonValueEnd(text, name_end + 1);
        std::optional<Json> args;
        if (args_end != std::string_view::npos) args = ParseJson(text.substr(name_end + 1, args_end - name_end - 1));
        if (!args || !args->is_object()) {
          at = open;  // as in hermes: the rest is content
          break;
        }
        reply.calls.push_back({"", std::string(text.substr(name_start, name_end - name_start)), args->dump()});
        at = args_end;
        if (text.substr(at, std::strlen("</function>")) == "</function>") at += std::strlen("</function>");
      }
      content += text.substr(at);
      reply.content = std::string(Trim(content));
      return reply;
    }
    case ToolCallFormat::kGeneric: {
      std::optional<Json> json = ParseJson(Trim(text));
      if (!json || !json->is_object()) return all_content();
      if (auto calls = json->find("tool_calls"); calls != json->end() && calls->is_array()) {
        for (const Json& item : *calls) {
          std::optional<ToolCall> call = CallOf(item);
          if (!call) return all_content();
          reply.calls.push_back(*std::move(call));
        }
        return reply;
      }
      if (auto call = json->find("tool_call"); call != json->end()) {
        std::optional<ToolCall> one = CallOf(*call);
        if (!one) return all_content();
        reply.calls.push_back(*std::move(one));
        return reply;
      }
      if (auto response = json->find("response"); response != json->end() && response->is_string()) {
        reply.content = response->get<std::string>();
        return reply;
      }
      return all_content();
    }
  }
  return all_content();
}

Json MessagesForFormat(ToolCallFormat format, Json messages, const Json& tools, bool system_role) {
  if (format != ToolCallFormat::kGeneric || !messages.is_array()) return messages;
  const bool has_tools = tools.is_array() && !tools.empty();
  for (Json& message : messages) {
    if (!message.is_object()) continue;
    const std::string role = TextOf(message, "role");
    if (role == "assistant" && message.contains("tool_calls") && message["tool_calls"].is_array()) {
      Json calls = Json::array();
      for (const Json& call : message["tool_calls"]) {
        const Json& function = FieldOf(call, "function");
        Json arguments = FieldOf(function, "arguments").is_null() ? Json("{}") : FieldOf(function, "arguments");
        if (arguments.is_string()) {
          std::optional<Json> parsed = ParseJson(arguments.get<std::string>());
          if (parsed) arguments = *parsed;
        }
        calls.push_back({{"name", TextOf(function, "name")}, {"arguments", arguments}});
      }
      message.erase("tool_calls");
      message["content"] = Json{{"tool_calls", calls}}.dump();
    } else if (role == "tool") {
      Json response = {{"tool_call_id", TextOf(message, "tool_call_id")},
                       {"content", message.contains("content") ? message["content"] : Json("")}};
      message = {{"role", "user"}, {"content", Json{{"tool_response", response}}.dump()}};
    }
  }
  if (!has_tools) return messages;
  const std::string instructions = edgellm::StrCat(
      "You can call these tools:\n", tools.dump(-1, ' ', false, Json::error_handler_t::replace),
      "\nTo call tools, reply with only a JSON object {\"tool_calls\": [{\"name\": <function name>, \"arguments\": "
      "<arguments object>}]}. Otherwise reply with only {\"response\": <your reply>}.");
  const std::string wanted_role = system_role ? "system" : "user";
  for (Json& message : messages) {
    if (!message.is_object() || TextOf(message, "role") != wanted_role) continue;
    if (message.contains("content") && message["content"].is_string()) {
      message["content"] = system_role ? message["content"].get<std::string>() + "\n\n" + instructions
                                       : instructions + "\n\n" + message["content"].get<std::string>();
      return messages;
    }
    break;
  }
  if (system_role) messages.insert(messages.begin(), Json{{"role", "system"}, {"content", instructions}});
  return messages;
}

std::string NewToolCallId(ToolCallFormat format) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  if (format == ToolCallFormat::kMistral) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string id;
    for (int i = 0; i < 9; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    return id;
  }
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += "0123456789abcdef"[rng() % 16];
  return id;
}

}  // namespace edgellm::chat
