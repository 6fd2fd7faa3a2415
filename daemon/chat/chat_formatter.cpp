#include "daemon/chat/chat_formatter.h"

#include <ctime>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/chat/jinja_template.h"

namespace edgellm::chat {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxTemplateBytes = 1 << 20;
constexpr size_t kMaxTimeFormatBytes = 256;

absl::Status FieldError(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(edgellm::StrCat(field, " ", problem));
}

absl::Status CheckOptionalString(const Json& message, const std::string& where, const char* key) {
  auto it = message.find(key);
  if (it != message.end() && !it->is_string() && !it->is_null()) {
    return FieldError(edgellm::StrCat(where, ".", key), "must be a string");
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> NormalizeContent(const Json& content, const std::string& where) {
  if (content.is_string() || content.is_null()) return content;
  if (!content.is_array()) return FieldError(where, "must be a string, null or a list of text parts");
  std::string joined;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string at = edgellm::StrCat(where, "[", i, "]");
    if (!part.is_object()) return FieldError(at, "must be an object");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) return FieldError(edgellm::StrCat(at, ".type"), "must be a string");
    if (*type != "text") {
      return FieldError(edgellm::StrCat(at, ".type"),
                        edgellm::StrCat("'", type->get<std::string>().substr(0, 32), "' is not supported: only text parts are"));
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) return FieldError(edgellm::StrCat(at, ".text"), "must be a string");
    if (i > 0) joined += '\n';
    joined += text->get<std::string>();
  }
  return Json(joined);
}

absl::StatusOr<Json> NormalizeToolCalls(const Json& calls, const std::string& where, bool arguments_as_objects) {
  if (!calls.is_array()) return FieldError(where, "must be a list");
  Json out = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string at = edgellm::StrCat(where, "[", i, "]");
    Json call = calls[i];
    if (!call.is_object()) return FieldError(at, "must be an object");
    auto type = call.find("type");
    if (type != call.end() && *type != "function") return FieldError(edgellm::StrCat(at, ".type"), "must be 'function'");
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) {
      return FieldError(edgellm::StrCat(at, ".function"), "must be an object");
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string()) {
      return FieldError(edgellm::StrCat(at, ".function.name"), "must be a string");
    }
    auto arguments = function->find("arguments");
    if (arguments_as_objects && arguments != function->end() && arguments->is_string()) {
      // Templates were written for transformers, where arguments are a dict.
      Json parsed = Json::parse(arguments->get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) *arguments = std::move(parsed);
    }
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

absl::StatusOr<Json> NormalizeMessages(const Json& messages, bool arguments_as_objects) {
  if (!messages.is_array()) return FieldError("messages", "must be a list");
  if (messages.empty()) return FieldError("messages", "is empty: a conversation needs at least one message");
  if (messages.size() > kMaxMessages) {
    return FieldError("messages", edgellm::StrCat("has ", messages.size(), " entries; the limit is ", kMaxMessages));
  }
  Json out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = edgellm::StrCat("messages[", i, "]");
    const Json& in = messages[i];
    if (!in.is_object()) return FieldError(where, "must be an object");
    Json message = in;
    auto role_field = message.find("role");
    if (role_field == message.end() || !role_field->is_string()) {
      return FieldError(where + ".role", "must be a string");
    }
    // A copy: adding a field below moves the message's entries.
    std::string role = role_field->get<std::string>();
    if (role == "developer") {
      role = "system";
      *role_field = role;
    }
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return FieldError(where + ".role", edgellm::StrCat("'", role.substr(0, 32),
                                                         "' is not one of system, developer, user, assistant, tool"));
    }
    auto content = message.find("content");
    const bool has_tool_calls = message.contains("tool_calls") && !message["tool_calls"].is_null();
    if (content == message.end() || content->is_null()) {
      if (!(role == "assistant" && has_tool_calls)) {
        return FieldError(where + ".content", "is missing (only an assistant turn with tool_calls may omit it)");
      }
      message["content"] = nullptr;
    } else {
      EDGELLM_ASSIGN_OR_RETURN(*content, NormalizeContent(*content, where + ".content"));
    }
    EDGELLM_RETURN_IF_ERROR(CheckOptionalString(message, where, "name"));
    EDGELLM_RETURN_IF_ERROR(CheckOptionalString(message, where, "tool_call_id"));
    if (has_tool_calls) {
      if (role != "assistant") return FieldError(where + ".tool_calls", "is only for assistant messages");
      EDGELLM_ASSIGN_OR_RETURN(message["tool_calls"], NormalizeToolCalls(message["tool_calls"], where + ".tool_calls", arguments_as_objects));
    }
    out.push_back(std::move(message));
  }
  return out;
}

ChatFormatter::ChatFormatter(std::shared_ptr<const jinja::Template> chat_template, std::string bos_token,
                             std::string eos_token, bool strip_leading_bos, ToolCallFormat tool_call_format)
    : template_(std::move(chat_template)),
      tool_call_format_(tool_call_format),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)),
      strip_leading_bos_(strip_leading_bos) {}

absl::StatusOr<ChatFormatter> ChatFormatter::Create(std::string_view source, std::string bos_token,
                                                    std::string eos_token, bool strip_leading_bos) {
  if (source.size() > kMaxTemplateBytes) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("the chat template has ", source.size(), " bytes; the limit is ", kMaxTemplateBytes));
  }
  jinja::ParseOptions options;
  options.trim_blocks = options.lstrip_blocks = true;
  absl::StatusOr<jinja::Template> parsed = jinja::Template::Parse(source, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(edgellm::StrCat("the chat template: ", parsed.status().message()));
  }
  return ChatFormatter(std::make_shared<const jinja::Template>(*std::move(parsed)), std::move(bos_token),
                       std::move(eos_token), strip_leading_bos, DetectToolCallFormat(source));
}

absl::StatusOr<std::string> ChatFormatter::Render(const Json& messages, const Json& tools,
                                                  bool add_generation_prompt) const {
  // Functionary's template prints the arguments' text as it is.
  EDGELLM_ASSIGN_OR_RETURN(Json normalized,
                           NormalizeMessages(messages, tool_call_format_ != ToolCallFormat::kFunctionary));
  if (!tools.is_null() && !tools.is_array()) return FieldError("tools", "must be a list");
  Json variables = Json::object();
  variables["messages"] = std::move(normalized);
  if (!tools.is_null()) {
    // Templates print a tool's description and walk its parameters'
    // properties: a tool that leaves them out gets empty ones, as OpenAI
    // treats it.
    Json complete = tools;
    for (Json& tool : complete) {
      if (!tool.is_object() || !tool.contains("function") || !tool["function"].is_object()) continue;
      Json& function = tool["function"];
      if (!function.contains("description") || !function["description"].is_string()) function["description"] = "";
      if (!function.contains("parameters") || !function["parameters"].is_object()) {
        function["parameters"] = {{"type", "object"}, {"properties", Json::object()}};
      }
      if (!function["parameters"].contains("properties")) function["parameters"]["properties"] = Json::object();
    }
    variables["tools"] = std::move(complete);
  }
  variables["add_generation_prompt"] = add_generation_prompt;
  variables["bos_token"] = bos_token_;
  variables["eos_token"] = eos_token_;
  jinja::Value context = jinja::Value::FromJson(variables);
  context.Set("strftime_now", jinja::Value::NewFunction([](const jinja::CallArgs& args) -> absl::StatusOr<jinja::Value> {
    const jinja::Value* format = args.Get("format", 0);
    if (format == nullptr || !format->is_string() || format->string_value().size() > kMaxTimeFormatBytes) {
      return absl::InvalidArgumentError("strftime_now takes a format string of at most 256 bytes");
    }
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[1024];
    const size_t n = std::strftime(buffer, sizeof(buffer), format->string_value().c_str(), &local);
    return jinja::Value::String(std::string(buffer, n));
  }));
  absl::StatusOr<std::string> prompt = template_->Render(context);
  if (!prompt.ok()) {
    return absl::InvalidArgumentError(edgellm::StrCat("the chat template refused the conversation: ",
                                                      prompt.status().message()));
  }
  if (strip_leading_bos_ && !bos_token_.empty() && prompt->rfind(bos_token_, 0) == 0) {
    prompt->erase(0, bos_token_.size());
  }
  return prompt;
}

}  // namespace edgellm::chat
