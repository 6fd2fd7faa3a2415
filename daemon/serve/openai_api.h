// serve/openai_api.h — the OpenAI-compatible HTTP API over the shared core:
// POST /v1/chat/completions and /v1/completions (whole, or streamed as
// server-sent events ending in [DONE]), POST /v1/embeddings, GET /v1/models.
// Errors are OpenAI's JSON error object with the usual statuses: 400 bad
// input (naming the field), 401 without a valid API key, 404 unknown model or
// path, 413 body too large, 429 when admission refuses (with Retry-After), 503
// while draining. A client that disconnects cancels its request at once.
#ifndef EDGELLM_SERVE_OPENAI_API_H_
#define EDGELLM_SERVE_OPENAI_API_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/ops/http_server.h"
#include "daemon/serve/inference_core.h"
#include "daemon/serve/openai_requests.h"

namespace edgellm::serve {

using ops::HttpRequest;
using ops::HttpResponder;

class OpenAiApi {
 public:
  // `api_keys` empty: no key is asked for. `core` must outlive the API.
  OpenAiApi(InferenceCore& core, std::vector<std::string> api_keys);

  void Handle(HttpRequest request, std::shared_ptr<HttpResponder> responder);

  // OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
  static std::string ErrorBody(int status, const std::string& message, const std::string& param = "");

 private:
  // Who is calling ("cert:NAME" for a client certificate, "api-key:N" for
  // the Nth key, or "local"), or nullopt when an API key is needed and missing.
  std::optional<std::string> Caller(const HttpRequest& request) const;
  // Answers `status` as OpenAI's error object, counted in the request metrics.
  void Refuse(HttpResponder& responder, const absl::Status& status);
  // Streams or answers `generation`, prepared on `serving` (or refuses it when it is an error).
  void StartGeneration(const Serving& serving, absl::StatusOr<GenerationRequest> generation,
                       OpenAiGeneration settings, bool chat, const std::string& caller,
                       std::shared_ptr<HttpResponder> responder, std::optional<ToolCallSetup> tool_calls = std::nullopt);
  void ChatCompletions(const HttpRequest& request, const std::string& caller,
                       std::shared_ptr<HttpResponder> responder);
  void Completions(const HttpRequest& request, const std::string& caller, std::shared_ptr<HttpResponder> responder);
  void Embeddings(const HttpRequest& request, std::shared_ptr<HttpResponder> responder);
  void Models(const HttpRequest& request, std::shared_ptr<HttpResponder> responder);

  InferenceCore& core_;
  std::vector<std::string> key_digests_;  // SHA-256 of each key: compared in constant time
};

// The API keys in `path`: one per line, blank lines and # comments ignored.
// NotFound or InvalidArgument (no key in the file) naming the file.
absl::StatusOr<std::vector<std::string>> LoadApiKeys(const std::string& path);

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_OPENAI_API_H_
