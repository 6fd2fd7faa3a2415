// serve/openai_requests.h — the bodies of the OpenAI-style HTTP API, parsed
// and checked: JSON in, the shared core's settings out, or an error naming
// the field. No I/O, so the parser can be fuzzed on its own.
#ifndef EDGELLM_SERVE_OPENAI_REQUESTS_H_
#define EDGELLM_SERVE_OPENAI_REQUESTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/serve/completion_params.h"
#include "daemon/serve/structured_output.h"
#include "nlohmann/json.hpp"

namespace edgellm::serve {

// What every generating request shares.
struct OpenAiGeneration {
  std::string model;  // as the client named it, echoed in responses
  CompletionParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  // response_format, and llama.cpp's grammar and json_schema fields; chat
  // requests add tools, tool_choice and parallel_tool_calls.
  OutputForm form;
};

struct ChatCompletionRequest {
  OpenAiGeneration generation;
  nlohmann::ordered_json messages;
};

struct CompletionRequest {
  OpenAiGeneration generation;
  std::string prompt;
};

struct EmbeddingsRequest {
  std::string model;
  CompletionParams params;  // model and adapter only
  std::vector<std::string> inputs;
  bool base64 = false;  // encoding_format "base64": little-endian float32, as the SDKs ask by default
};

// InvalidArgument whose message starts with the field it is about
// ("temperature must be a number"); NotFound for a model this daemon does not
// serve (checked by the caller: `model` names "MODEL" or "MODEL:ADAPTER").
absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(std::string_view body);
absl::StatusOr<CompletionRequest> ParseCompletionRequest(std::string_view body);
absl::StatusOr<EmbeddingsRequest> ParseEmbeddingsRequest(std::string_view body);

// The field an InvalidArgument message from the parsers names, or "".
std::string ParamOf(std::string_view message);

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_OPENAI_REQUESTS_H_
