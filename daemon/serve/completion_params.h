// serve/completion_params.h — a request's generation settings as every
// front end states them (gRPC messages, OpenAI-style JSON), before the shared
// core checks them and turns them into engine options.
#ifndef EDGELLM_SERVE_COMPLETION_PARAMS_H_
#define EDGELLM_SERVE_COMPLETION_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace edgellm::serve {

// Unset fields take the daemon's defaults.
struct CompletionParams {
  std::string model;    // "" or the served model's name
  std::string adapter;  // "" : the installed version (or the bare model)
  std::optional<uint32_t> max_tokens;  // unset: as many as the context leaves
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<uint32_t> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::optional<uint32_t> draft_tokens;
  int32_t top_logprobs = -1;  // -1: no logprobs; else alternatives per token (0..20)
  // GBNF the output must follow ("": free text); a JSON Schema, an OpenAI
  // response_format or a tool choice arrives here as its grammar.
  std::string grammar;
  std::string grammar_trigger;  // GenerateOptions::grammar_trigger
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_COMPLETION_PARAMS_H_
