#include "daemon/serve/openai_requests.h"

#include <cmath>
#include <limits>

#include "common/json_depth.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/token_logprobs.h"

namespace edgellm::serve {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Bad(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(edgellm::StrCat(field, " ", problem));
}

absl::StatusOr<Json> ParseObject(std::string_view body) {
  if (JsonDepth(body) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(edgellm::StrCat("the body nests deeper than ", kMaxJsonDepth, " levels"));
  }
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  return json;
}

// The field, if present and not null.
const Json* Field(const Json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

absl::Status ReadBool(const Json& body, const char* name, bool* out) {
  const Json* v = Field(body, name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) return Bad(name, "must be true or false");
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadFloat(const Json& body, const char* name, std::optional<float>* out) {
  const Json* v = Field(body, name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number()) return Bad(name, "must be a number");
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::abs(d) > 1e6) return Bad(name, "is out of range");
  *out = static_cast<float>(d);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> ReadInt(const Json& body, const char* name, int64_t min, int64_t max) {
  const Json* v = Field(body, name);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) return Bad(name, "must be an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Bad(name, edgellm::StrCat("must be at most ", max));
  }
  const int64_t i = v->get<int64_t>();
  if (i < min || i > max) return Bad(name, edgellm::StrCat("must be between ", min, " and ", max));
  return std::optional<int64_t>(i);
}

// A field that is a string or a list of strings (as `stop` and `input` are).
absl::Status ReadStrings(const Json& body, const char* name, std::vector<std::string>* out) {
  const Json* v = Field(body, name);
  if (v == nullptr) return absl::OkStatus();
  if (v->is_string()) {
    out->push_back(v->get<std::string>());
    return absl::OkStatus();
  }
  if (!v->is_array()) return Bad(name, "must be a string or a list of strings");
  for (const Json& text : *v) {
    if (!text.is_string()) return Bad(name, "must be a string or a list of strings");
    out->push_back(text.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ReadModel(const Json& body, std::string* model, CompletionParams* params) {
  const Json* v = Field(body, "model");
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return Bad("model", "must be a string");
  *model = v->get<std::string>();
  if (model->size() > 256) return Bad("model", "is longer than 256 bytes");
  const size_t colon = model->find(':');
  params->model = model->substr(0, colon);
  if (colon != std::string::npos) params->adapter = model->substr(colon + 1);
  return absl::OkStatus();
}

// response_format, and the grammar and json_schema fields llama.cpp's server takes.
absl::Status ReadOutputForm(const Json& body, OutputForm* form) {
  if (const Json* grammar = Field(body, "grammar")) {
    if (!grammar->is_string()) return Bad("grammar", "must be a string of GBNF");
    form->grammar = grammar->get<std::string>();
  }
  if (const Json* schema = Field(body, "json_schema")) {
    if (!schema->is_object() && !schema->is_boolean()) return Bad("json_schema", "must be a JSON Schema object");
    form->json_schema = *schema;
  }
  const Json* format = Field(body, "response_format");
  if (format == nullptr) return absl::OkStatus();
  const Json* type_field = Field(*format, "type");
  const std::string type = type_field != nullptr && type_field->is_string() ? type_field->get<std::string>() : "";
  if (type == "text") return absl::OkStatus();
  if (type == "json_object") {
    form->json_object = true;
    return absl::OkStatus();
  }
  if (type != "json_schema") {
    return Bad("response_format", "must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                                  "{\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., \"schema\": {...}}}");
  }
  const Json* spec = Field(*format, "json_schema");
  if (spec == nullptr || !spec->is_object()) return Bad("response_format", "json_schema must be an object");
  if (const Json* name = Field(*spec, "name"); name != nullptr && !name->is_string()) {
    return Bad("response_format", "json_schema.name must be a string");
  }
  const Json* schema = Field(*spec, "schema");
  if (schema == nullptr) {
    form->json_schema = Json::object();  // OpenAI's default: any JSON
  } else if (!schema->is_object() && !schema->is_boolean()) {
    return Bad("response_format", "json_schema.schema must be a JSON Schema object");
  } else {
    form->json_schema = *schema;
  }
  if (form->grammar || form->json_object) return Bad("response_format", "excludes grammar and json_schema");
  form->json_schema_field = "response_format.json_schema.schema";
  return absl::OkStatus();
}

// What /v1/chat/completions and /v1/completions share.
absl::Status ReadGeneration(const Json& body, OpenAiGeneration* g) {
  CompletionParams& p = g->params;
  EDGELLM_RETURN_IF_ERROR(ReadModel(body, &g->model, &p));
  EDGELLM_RETURN_IF_ERROR(ReadFloat(body, "temperature", &p.temperature));
  EDGELLM_RETURN_IF_ERROR(ReadFloat(body, "top_p", &p.top_p));
  EDGELLM_RETURN_IF_ERROR(ReadFloat(body, "min_p", &p.min_p));
  EDGELLM_RETURN_IF_ERROR(ReadFloat(body, "repeat_penalty", &p.repeat_penalty));
  for (const char* unsupported : {"frequency_penalty", "presence_penalty"}) {
    std::optional<float> value;
    EDGELLM_RETURN_IF_ERROR(ReadFloat(body, unsupported, &value));
    if (value && *value != 0.0f) return Bad(unsupported, "is not supported (use repeat_penalty); only 0 is accepted");
  }
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> top_k, ReadInt(body, "top_k", 0, 1 << 30));
  if (top_k) p.top_k = static_cast<uint32_t>(*top_k);
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> seed, ReadInt(body, "seed", std::numeric_limits<int64_t>::min(),
                                                                std::numeric_limits<int64_t>::max()));
  if (seed) p.seed = static_cast<uint64_t>(*seed);
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> max_tokens, ReadInt(body, name, 1, 1 << 30));
    if (max_tokens) p.max_tokens = static_cast<uint32_t>(*max_tokens);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> n, ReadInt(body, "n", 1, 1));
  (void)n;
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> draft_tokens, ReadInt(body, "draft_tokens", 0, 64));
  if (draft_tokens) p.draft_tokens = static_cast<uint32_t>(*draft_tokens);
  EDGELLM_RETURN_IF_ERROR(ReadStrings(body, "stop", &p.stop));
  EDGELLM_RETURN_IF_ERROR(ReadBool(body, "stream", &g->stream));
  if (const Json* options = Field(body, "stream_options")) {
    if (!options->is_object()) return Bad("stream_options", "must be an object");
    EDGELLM_RETURN_IF_ERROR(ReadBool(*options, "include_usage", &g->include_usage));
  }
  if (const Json* user = Field(body, "user"); user != nullptr && !user->is_string()) {
    return Bad("user", "must be a string");
  }
  return ReadOutputForm(body, &g->form);
}

absl::StatusOr<ChatCompletionRequest> ReadChatCompletion(std::string_view body) {
  EDGELLM_ASSIGN_OR_RETURN(Json json, ParseObject(body));
  ChatCompletionRequest r;
  EDGELLM_RETURN_IF_ERROR(ReadGeneration(json, &r.generation));
  EDGELLM_RETURN_IF_ERROR(ReadBool(json, "logprobs", &r.generation.logprobs));
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> top, ReadInt(json, "top_logprobs", 0, engine::kMaxTopLogprobs));
  if (top && !r.generation.logprobs) return Bad("top_logprobs", "needs logprobs set to true");
  if (r.generation.logprobs) r.generation.params.top_logprobs = static_cast<int32_t>(top.value_or(0));
  const Json* messages = Field(json, "messages");
  if (messages == nullptr) return Bad("messages", "is required");
  r.messages = *messages;
  OutputForm& form = r.generation.form;
  if (const Json* tools = Field(json, "tools")) {
    if (!tools->is_array()) return Bad("tools", "must be a list");
    EDGELLM_RETURN_IF_ERROR(chat::ValidateTools(*tools));
    form.tools = *tools;
  }
  if (const Json* choice = Field(json, "tool_choice")) {
    EDGELLM_ASSIGN_OR_RETURN(form.tool_choice, chat::ParseToolChoice(*choice, form.tools));
  }
  EDGELLM_RETURN_IF_ERROR(ReadBool(json, "parallel_tool_calls", &form.parallel_tool_calls));
  return r;
}

absl::StatusOr<CompletionRequest> ReadCompletion(std::string_view body) {
  EDGELLM_ASSIGN_OR_RETURN(Json json, ParseObject(body));
  CompletionRequest r;
  EDGELLM_RETURN_IF_ERROR(ReadGeneration(json, &r.generation));
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> logprobs, ReadInt(json, "logprobs", 0, engine::kMaxTopLogprobs));
  if (logprobs) {
    r.generation.logprobs = true;
    r.generation.params.top_logprobs = static_cast<int32_t>(*logprobs);
  }
  bool echo = false;
  EDGELLM_RETURN_IF_ERROR(ReadBool(json, "echo", &echo));
  if (echo) return Bad("echo", "is not supported");
  if (Field(json, "suffix") != nullptr) return Bad("suffix", "is not supported");
  EDGELLM_ASSIGN_OR_RETURN(std::optional<int64_t> best_of, ReadInt(json, "best_of", 1, 1));
  (void)best_of;
  const Json* prompt = Field(json, "prompt");
  if (prompt == nullptr) return Bad("prompt", "is required");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
  if (!prompt->is_string()) return Bad("prompt", "must be a string (or a list of one string)");
  r.prompt = prompt->get<std::string>();
  return r;
}

absl::StatusOr<EmbeddingsRequest> ReadEmbeddings(std::string_view body) {
  EDGELLM_ASSIGN_OR_RETURN(Json json, ParseObject(body));
  EmbeddingsRequest r;
  EDGELLM_RETURN_IF_ERROR(ReadModel(json, &r.model, &r.params));
  if (!r.params.adapter.empty()) return Bad("model", "embeddings come from the base model: name no adapter");
  if (Field(json, "input") == nullptr) return Bad("input", "is required");
  EDGELLM_RETURN_IF_ERROR(ReadStrings(json, "input", &r.inputs));
  if (const Json* format = Field(json, "encoding_format")) {
    if (*format == "base64") {
      r.base64 = true;
    } else if (*format != "float") {
      return Bad("encoding_format", "must be 'float' or 'base64'");
    }
  }
  if (Field(json, "dimensions") != nullptr) return Bad("dimensions", "is not supported: embeddings have the model's width");
  if (const Json* user = Field(json, "user"); user != nullptr && !user->is_string()) return Bad("user", "must be a string");
  return r;
}

// Runs `read`. Every field is checked for its type before it is read, but a
// member of a type no check foresaw makes nlohmann's accessors throw: that
// is the request's fault, answered as such, and never the daemon's end.
template <typename Request>
absl::StatusOr<Request> RefusingTypeErrors(absl::StatusOr<Request> (*read)(std::string_view), std::string_view body) {
  try {
    return read(body);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(edgellm::StrCat("the request has a field of the wrong JSON type (", e.what(), ")"));
  }
}

}  // namespace

absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(std::string_view body) {
  return RefusingTypeErrors(&ReadChatCompletion, body);
}

absl::StatusOr<CompletionRequest> ParseCompletionRequest(std::string_view body) {
  return RefusingTypeErrors(&ReadCompletion, body);
}

absl::StatusOr<EmbeddingsRequest> ParseEmbeddingsRequest(std::string_view body) {
  return RefusingTypeErrors(&ReadEmbeddings, body);
}

std::string ParamOf(std::string_view message) {
  static constexpr std::string_view kFields[] = {
      "model", "messages", "temperature", "top_p", "min_p", "repeat_penalty", "frequency_penalty",
      "presence_penalty", "top_k", "seed", "max_tokens", "max_completion_tokens", "n", "draft_tokens", "stop",
      "stream", "stream_options", "user", "logprobs", "top_logprobs", "tools", "tool_choice", "response_format",
      "echo", "suffix", "best_of", "prompt", "input", "encoding_format", "dimensions", "grammar", "json_schema",
      "parallel_tool_calls"};
  const std::string_view first = message.substr(0, message.find(' '));
  if (first.rfind("messages[", 0) == 0 || first.rfind("input[", 0) == 0) return std::string(first);
  if (first.rfind("tools[", 0) == 0) return "tools";
  if (first.rfind("response_format", 0) == 0) return "response_format";
  for (std::string_view field : kFields) {
    if (first == field) return std::string(first);
  }
  return "";
}

}  // namespace edgellm::serve
