#include "daemon/serve/openai_api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/mutex.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/utf8.h"
#include "daemon/serve/openai_requests.h"

namespace edgellm::serve {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string Sha256(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string RandomId(std::string_view prefix) {
  unsigned char bytes[12];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::memset(bytes, 0, sizeof(bytes));
  std::string id(prefix);
  for (unsigned char b : bytes) {
    id += "0123456789abcdef"[b >> 4];
    id += "0123456789abcdef"[b & 15];
  }
  return id;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

Json ErrorJson(int status, const std::string& message, const std::string& param) {
  std::string type = "invalid_request_error", code;
  switch (status) {
    case 401: type = "authentication_error"; code = "invalid_api_key"; break;
    case 404: code = "model_not_found"; break;
    case 413: code = "request_too_large"; break;
    case 429: type = "rate_limit_error"; code = "rate_limit_exceeded"; break;
    case 503: type = "server_error"; code = "unavailable"; break;
    default:
      if (status >= 500) type = "server_error";
  }
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? Json(nullptr) : Json(param)},
            {"code", code.empty() ? Json(nullptr) : Json(code)}}}};
}

void SendError(HttpResponder& responder, const absl::Status& status) {
  const int http = HttpStatus(status.code());
  std::vector<std::pair<std::string, std::string>> headers;
  if (http == 429) headers.emplace_back("Retry-After", "1");
  responder.Send(http, "application/json",
                 OpenAiApi::ErrorBody(http, std::string(status.message()), ParamOf(std::string(status.message()))),
                 std::move(headers));
}

void SendJson(HttpResponder& responder, const Json& json) {
  responder.Send(200, "application/json", Dump(json));
}

std::string Base64(const std::vector<float>& values) {
  const size_t bytes = values.size() * sizeof(float);
  std::string out(4 * ((bytes + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(values.data()), static_cast<int>(bytes));
  out.resize(static_cast<size_t>(n));
  return out;
}

Json BytesOf(std::string_view piece) {
  Json bytes = Json::array();
  for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// One token's entry of a chat completion's logprobs.content.
Json ChatLogprob(const engine::Tokenizer& tokenizer, const engine::TokenLogprobs& l) {
  const std::string piece = tokenizer.TokenToPiece(l.chosen.id);
  Json top = Json::array();
  for (const engine::TokenLogprob& alternative : l.top) {
    const std::string p = tokenizer.TokenToPiece(alternative.id);
    top.push_back({{"token", engine::ToValidUtf8(p)}, {"logprob", alternative.logprob}, {"bytes", BytesOf(p)}});
  }
  return {{"token", engine::ToValidUtf8(piece)},
          {"logprob", l.chosen.logprob},
          {"bytes", BytesOf(piece)},
          {"top_logprobs", std::move(top)}};
}

std::string_view FinishReasonText(engine::FinishReason reason) {
  return reason == engine::FinishReason::kLength ? "length" : "stop";
}

Json Usage(const GenerationEvent& last) {
  return {{"prompt_tokens", last.prompt_tokens},
          {"completion_tokens", last.completion_tokens},
          {"total_tokens", last.prompt_tokens + last.completion_tokens}};
}

// One generation answered over HTTP: chat or plain completion, whole or
// streamed. Lives until its last event; the sink runs on the scheduler thread.
class HttpGeneration : public std::enable_shared_from_this<HttpGeneration> {
 public:
  // The generation runs on `serving`'s model, which it holds until it ends.
  HttpGeneration(InferenceCore& core, Serving serving, std::shared_ptr<HttpResponder> responder,
                 OpenAiGeneration generation, bool chat, std::string caller, std::optional<ToolCallSetup> tool_calls)
      : tool_calls_(tool_calls ? std::make_optional<ToolCallReply>(*std::move(tool_calls)) : std::nullopt),
        core_(core),
        caller_(std::move(caller)),
        responder_(std::move(responder)),
        serving_(std::move(serving)),
        generation_(std::move(generation)),
        chat_(chat),
        id_(RandomId(chat ? "chatcmpl-" : "cmpl-")),
        created_(UnixNow()) {}

  void Start(GenerationRequest request) {
    if (absl::Status admitted = core_.StreamOpened(caller_); !admitted.ok()) {
      Count(admitted.code());
      SendError(*responder_, admitted);
      return;
    }
    std::weak_ptr<HttpGeneration> weak = weak_from_this();
    responder_->OnClientGone([weak] {
      if (auto self = weak.lock()) self->CancelFromClient();
    });
    absl::StatusOr<uint64_t> id =
        serving_.model->scheduler().Submit(std::move(request), [self = shared_from_this()](GenerationEvent e) {
          self->OnEvent(std::move(e));
        });
    if (!id.ok()) {
      Count(id.status().code());
      SendError(*responder_, id.status());
      core_.StreamClosed(caller_);
      return;
    }
    bool cancel = false;
    {
      MutexLock lock(&mu_);
      id_in_scheduler_ = *id;
      cancel = client_gone_;
    }
    if (cancel) serving_.model->scheduler().Cancel(*id);
    if (generation_.stream) {
      responder_->StartStream(200, "text/event-stream");
      if (chat_) SendChunk(Json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
    }
  }

 private:
  void CancelFromClient() {
    std::optional<uint64_t> id;
    {
      MutexLock lock(&mu_);
      client_gone_ = true;
      id = id_in_scheduler_;
    }
    if (id) serving_.model->scheduler().Cancel(*id);
  }

  void Count(absl::StatusCode code) {
    if (core_.metrics() != nullptr) core_.metrics()->CountRequest(code);
  }

  Json Envelope() const {
    return {{"id", id_},
            {"object", chat_ ? (generation_.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
            {"created", created_},
            {"model", generation_.model.empty() ? core_.config().model_name : generation_.model},
            {"system_fingerprint", "edgellm"}};
  }

  // Completions' logprobs: parallel lists of tokens, their logprobs, the
  // alternatives as {token: logprob} and each token's offset in the text.
  void AddCompletionLogprobs(Json& logprobs, const std::vector<engine::TokenLogprobs>& entries) {
    const engine::Tokenizer& tokenizer = serving_.model->model().tokenizer();
    for (const engine::TokenLogprobs& l : entries) {
      const std::string piece = engine::ToValidUtf8(tokenizer.TokenToPiece(l.chosen.id));
      Json top = Json::object();
      for (const engine::TokenLogprob& a : l.top) top[engine::ToValidUtf8(tokenizer.TokenToPiece(a.id))] = a.logprob;
      logprobs["tokens"].push_back(piece);
      logprobs["token_logprobs"].push_back(l.chosen.logprob);
      logprobs["top_logprobs"].push_back(std::move(top));
      logprobs["text_offset"].push_back(text_offset_);
      text_offset_ += static_cast<int64_t>(piece.size());
    }
  }

  Json LogprobsOf(const std::vector<engine::TokenLogprobs>& entries) {
    if (!generation_.logprobs) return nullptr;
    if (chat_) {
      Json content = Json::array();
      for (const engine::TokenLogprobs& l : entries) content.push_back(ChatLogprob(serving_.model->model().tokenizer(), l));
      return {{"content", std::move(content)}};
    }
    Json logprobs = {{"tokens", Json::array()},
                     {"token_logprobs", Json::array()},
                     {"top_logprobs", Json::array()},
                     {"text_offset", Json::array()}};
    AddCompletionLogprobs(logprobs, entries);
    return logprobs;
  }

  // One server-sent event of a stream: `delta` (chat) or `text` (completions).
  void SendChunk(const Json& delta_or_text, Json logprobs, Json finish_reason) {
    Json chunk = Envelope();
    Json choice = {{"index", 0}};
    if (chat_) {
      choice["delta"] = delta_or_text;
    } else {
      choice["text"] = delta_or_text;
    }
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] = std::move(finish_reason);
    chunk["choices"] = Json::array({std::move(choice)});
    if (generation_.include_usage) chunk["usage"] = nullptr;
    responder_->Write("data: " + Dump(chunk) + "\n\n");
  }

  // The calls of a reply with tools, as streamed deltas or a message's list.
  static Json ToolCallsJson(const std::vector<chat::ToolCall>& calls, bool delta) {
    Json out = Json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
      Json call = delta ? Json{{"index", i}} : Json::object();
      call["id"] = calls[i].id;
      call["type"] = "function";
      call["function"] = {{"name", calls[i].name}, {"arguments", engine::ToValidUtf8(calls[i].arguments)}};
      out.push_back(std::move(call));
    }
    return out;
  }

  void OnEvent(GenerationEvent event) {
    // A reply with tools shows its content as it comes; the calls come at the end.
    if (tool_calls_) event.text = tool_calls_->Push(event.text);
    if (!event.last && generation_.stream) {
      if (event.text.empty() && !generation_.logprobs) return;
      const std::string text = engine::ToValidUtf8(event.text);
      SendChunk(chat_ ? Json{{"content", text}} : Json(text), LogprobsOf(event.logprobs), nullptr);
      return;
    }
    if (!event.last) {
      text_ += event.text;
      for (engine::TokenLogprobs& l : event.logprobs) logprobs_.push_back(std::move(l));
      return;
    }
    Count(event.status.code());
    core_.StreamClosed(caller_);
    if (!event.status.ok()) {
      if (generation_.stream) {
        const int http = HttpStatus(event.status.code());
        responder_->Write("data: " + OpenAiApi::ErrorBody(http, std::string(event.status.message())) + "\n\n");
        responder_->End();
      } else {
        SendError(*responder_, event.status);
      }
      return;
    }
    std::optional<ToolCallReply::Final> final_calls;
    if (tool_calls_) {
      final_calls = tool_calls_->Finish();
      event.text += final_calls->content;
    }
    const bool called = final_calls && !final_calls->calls.empty();
    const std::string_view finish_reason = called ? "tool_calls" : FinishReasonText(event.finish_reason);
    if (generation_.stream) {
      const std::string text = engine::ToValidUtf8(event.text);
      if (!text.empty() || !event.logprobs.empty()) {
        SendChunk(chat_ ? Json{{"content", text}} : Json(text), LogprobsOf(event.logprobs), nullptr);
      }
      if (called) SendChunk(Json{{"tool_calls", ToolCallsJson(final_calls->calls, /*delta=*/true)}}, nullptr, nullptr);
      SendChunk(chat_ ? Json::object() : Json(""), nullptr, finish_reason);
      if (generation_.include_usage) {
        Json chunk = Envelope();
        chunk["choices"] = Json::array();
        chunk["usage"] = Usage(event);
        responder_->Write("data: " + Dump(chunk) + "\n\n");
      }
      responder_->Write("data: [DONE]\n\n");
      responder_->End();
      return;
    }
    text_ += event.text;
    for (engine::TokenLogprobs& l : event.logprobs) logprobs_.push_back(std::move(l));
    Json response = Envelope();
    Json choice = {{"index", 0}};
    if (chat_) {
      choice["message"] = {{"role", "assistant"}, {"content", engine::ToValidUtf8(text_)}};
      if (called) {
        if (text_.empty()) choice["message"]["content"] = nullptr;
        choice["message"]["tool_calls"] = ToolCallsJson(final_calls->calls, /*delta=*/false);
      }
    } else {
      choice["text"] = engine::ToValidUtf8(text_);
    }
    choice["logprobs"] = LogprobsOf(logprobs_);
    choice["finish_reason"] = finish_reason;
    response["choices"] = Json::array({std::move(choice)});
    response["usage"] = Usage(event);
    SendJson(*responder_, response);
  }

  std::optional<ToolCallReply> tool_calls_;  // a reply with tools (scheduler thread only)
  InferenceCore& core_;
  const std::string caller_;  // whose share of the places it takes
  const std::shared_ptr<HttpResponder> responder_;
  const Serving serving_;
  const OpenAiGeneration generation_;
  const bool chat_;
  const std::string id_;
  const int64_t created_;
  Mutex mu_;
  std::optional<uint64_t> id_in_scheduler_ ABSL_GUARDED_BY(mu_);
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  // Whole responses: what has come so far (scheduler thread only).
  std::string text_;
  std::vector<engine::TokenLogprobs> logprobs_;
  int64_t text_offset_ = 0;
};

// The model part of "MODEL" or "MODEL:ADAPTER" must name this daemon's model: 404 otherwise.
absl::Status CheckModelName(const InferenceCore& core, const CompletionParams& params) {
  if (core.CheckModel(params.model).ok()) {
    if (params.adapter.empty()) return absl::OkStatus();
    const std::vector<std::string> adapters = core.Describe().adapters;
    if (std::find(adapters.begin(), adapters.end(), params.adapter) != adapters.end()) return absl::OkStatus();
    return absl::NotFoundError(edgellm::StrCat("model '", params.model.empty() ? core.config().model_name : params.model,
                                               ":", params.adapter.substr(0, 64),
                                               "' does not exist: no adapter of that name is loaded"));
  }
  return absl::NotFoundError(edgellm::StrCat("model '", params.model.substr(0, 128), "' does not exist; this daemon serves '",
                                             core.config().model_name, "'"));
}

}  // namespace

OpenAiApi::OpenAiApi(InferenceCore& core, std::vector<std::string> api_keys) : core_(core) {
  for (const std::string& key : api_keys) key_digests_.push_back(Sha256(key));
}

std::string OpenAiApi::ErrorBody(int status, const std::string& message, const std::string& param) {
  return Dump(ErrorJson(status, message, param));
}

std::optional<std::string> OpenAiApi::Caller(const HttpRequest& request) const {
  const std::string certified = request.peer_name.empty() ? "local" : "cert:" + request.peer_name;
  if (key_digests_.empty()) return certified;
  auto it = request.headers.find("authorization");
  if (it == request.headers.end()) return std::nullopt;
  const std::string& value = it->second;
  if (value.rfind("Bearer ", 0) != 0) return std::nullopt;
  // Digests of equal length, every key compared: the time taken says nothing about any key.
  const std::string digest = Sha256(std::string_view(value).substr(7));
  std::optional<size_t> match;
  for (size_t k = 0; k < key_digests_.size(); ++k) {
    if (CRYPTO_memcmp(key_digests_[k].data(), digest.data(), digest.size()) == 0) match = k;
  }
  if (!match) return std::nullopt;
  return request.peer_name.empty() ? edgellm::StrCat("api-key:", *match) : certified;
}

void OpenAiApi::Handle(HttpRequest request, std::shared_ptr<HttpResponder> responder) {
  const std::optional<std::string> caller = Caller(request);
  if (!caller) {
    responder->Send(401, "application/json",
                    ErrorBody(401, "a valid API key is required: send it as 'Authorization: Bearer KEY'"),
                    {{"WWW-Authenticate", "Bearer"}});
    if (core_.metrics() != nullptr) core_.metrics()->CountRequest(absl::StatusCode::kUnauthenticated);
    return;
  }
  const bool post = request.method == "POST", get = request.method == "GET";
  if (request.path == "/v1/chat/completions" && post) return ChatCompletions(request, *caller, std::move(responder));
  if (request.path == "/v1/completions" && post) return Completions(request, *caller, std::move(responder));
  if (request.path == "/v1/embeddings" && post) return Embeddings(request, std::move(responder));
  if ((request.path == "/v1/models" || request.path.rfind("/v1/models/", 0) == 0) && get) {
    return Models(request, std::move(responder));
  }
  const bool known = request.path == "/v1/chat/completions" || request.path == "/v1/completions" ||
                     request.path == "/v1/embeddings" || request.path == "/v1/models";
  if (known) {
    responder->Send(405, "application/json",
                    ErrorBody(405, edgellm::StrCat(request.method.substr(0, 16), " is not allowed on ", request.path)));
    return;
  }
  responder->Send(404, "application/json", ErrorBody(404, edgellm::StrCat("no such endpoint: ", request.path.substr(0, 128))));
}

void OpenAiApi::Refuse(HttpResponder& responder, const absl::Status& status) {
  if (core_.metrics() != nullptr) core_.metrics()->CountRequest(status.code());
  SendError(responder, status);
}

void OpenAiApi::StartGeneration(const Serving& serving, absl::StatusOr<GenerationRequest> generation,
                                OpenAiGeneration settings, bool chat, const std::string& caller,
                                std::shared_ptr<HttpResponder> responder, std::optional<ToolCallSetup> tool_calls) {
  if (!generation.ok()) return Refuse(*responder, generation.status());
  std::make_shared<HttpGeneration>(core_, serving, std::move(responder), std::move(settings), chat, caller,
                                   std::move(tool_calls))
      ->Start(*std::move(generation));
}

void OpenAiApi::ChatCompletions(const HttpRequest& request, const std::string& caller,
                                std::shared_ptr<HttpResponder> responder) {
  absl::StatusOr<ChatCompletionRequest> parsed = ParseChatCompletionRequest(request.body);
  if (!parsed.ok()) return Refuse(*responder, parsed.status());
  std::optional<ToolCallSetup> tool_calls;
  const absl::StatusOr<Serving> acquired = core_.Acquire();
  if (!acquired.ok()) return Refuse(*responder, acquired.status());
  const Serving& serving = *acquired;
  const auto prepare = [&]() -> absl::StatusOr<GenerationRequest> {
    EDGELLM_RETURN_IF_ERROR(CheckModelName(core_, parsed->generation.params));
    const OutputForm& form = parsed->generation.form;
    EDGELLM_ASSIGN_OR_RETURN(tool_calls, ApplyOutputForm(form, InferenceCore::ToolCallFormatOf(serving), parsed->generation.params));
    const bool offer_tools = form.tool_choice.mode != chat::ToolChoice::Mode::kNone;
    EDGELLM_ASSIGN_OR_RETURN(std::string prompt,
                             core_.RenderChat(serving, parsed->messages, offer_tools ? form.tools : Json(nullptr)));
    return core_.Prepare(serving, parsed->generation.params, prompt, Clock::time_point::max(), "the conversation");
  };
  absl::StatusOr<GenerationRequest> generation = prepare();
  StartGeneration(serving, std::move(generation), std::move(parsed->generation), /*chat=*/true, caller, std::move(responder),
                  std::move(tool_calls));
}

void OpenAiApi::Completions(const HttpRequest& request, const std::string& caller,
                            std::shared_ptr<HttpResponder> responder) {
  absl::StatusOr<CompletionRequest> parsed = ParseCompletionRequest(request.body);
  if (!parsed.ok()) return Refuse(*responder, parsed.status());
  const absl::StatusOr<Serving> acquired = core_.Acquire();
  if (!acquired.ok()) return Refuse(*responder, acquired.status());
  const Serving& serving = *acquired;
  const auto prepare = [&]() -> absl::StatusOr<GenerationRequest> {
    EDGELLM_RETURN_IF_ERROR(CheckModelName(core_, parsed->generation.params));
    EDGELLM_RETURN_IF_ERROR(
        ApplyOutputForm(parsed->generation.form, InferenceCore::ToolCallFormatOf(serving), parsed->generation.params).status());
    return core_.Prepare(serving, parsed->generation.params, parsed->prompt, Clock::time_point::max());
  };
  absl::StatusOr<GenerationRequest> generation = prepare();
  StartGeneration(serving, std::move(generation), std::move(parsed->generation), /*chat=*/false, caller,
                  std::move(responder));
}

void OpenAiApi::Embeddings(const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
  absl::StatusOr<EmbeddingsRequest> parsed = ParseEmbeddingsRequest(request.body);
  absl::Status status = parsed.status();
  if (status.ok()) status = CheckModelName(core_, parsed->params);
  if (!status.ok()) return Refuse(*responder, status);
  const std::string model = parsed->model.empty() ? core_.config().model_name : parsed->model;
  const bool base64 = parsed->base64;
  core_.Embed(parsed->params.model, std::move(parsed->inputs),
              [this, responder, model, base64](absl::StatusOr<EmbedResult> result) {
                if (core_.metrics() != nullptr) core_.metrics()->CountRequest(result.status().code());
                if (!result.ok()) return SendError(*responder, result.status());
                Json data = Json::array();
                for (size_t i = 0; i < result->embeddings.size(); ++i) {
                  const std::vector<float>& values = result->embeddings[i];
                  Json embedding;
                  if (base64) {
                    // Little-endian float32, as the SDKs decode it (x86 and Arm are little-endian).
                    embedding = Base64(values);
                  } else {
                    embedding = values;
                  }
                  data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
                }
                SendJson(*responder, {{"object", "list"},
                                      {"data", std::move(data)},
                                      {"model", model},
                                      {"usage", {{"prompt_tokens", result->prompt_tokens},
                                                 {"total_tokens", result->prompt_tokens}}}});
              });
}

void OpenAiApi::Models(const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
  const ModelDescription d = core_.Describe();
  const auto entry = [&](const std::string& id) {
    return Json{{"id", id},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "edgellm"},
                {"context_length", d.context_length},
                {"has_chat_template", d.has_chat_template},
                {"version", d.version}};
  };
  std::vector<std::string> ids = {d.name};
  for (const std::string& adapter : d.adapters) ids.push_back(d.name + ":" + adapter);
  if (request.path != "/v1/models") {
    const std::string wanted = request.path.substr(std::strlen("/v1/models/"));
    for (const std::string& id : ids) {
      if (id == wanted) return SendJson(*responder, entry(id));
    }
    return SendError(*responder, absl::NotFoundError(edgellm::StrCat("model '", wanted.substr(0, 128), "' does not exist")));
  }
  Json data = Json::array();
  for (const std::string& id : ids) data.push_back(entry(id));
  SendJson(*responder, {{"object", "list"}, {"data", std::move(data)}});
}

absl::StatusOr<std::vector<std::string>> LoadApiKeys(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, "api key file");
  if (!text.ok()) return text.status();
  std::vector<std::string> keys;
  size_t start = 0;
  while (start <= text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    start = end + 1;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    keys.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
  }
  if (keys.empty()) return absl::InvalidArgumentError(edgellm::StrCat("api key file ", path, " holds no key"));
  return keys;
}

}  // namespace edgellm::serve
