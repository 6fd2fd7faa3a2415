// engine/token_logprobs.h — how likely the model found each token it
// produced: the log-probability of the sampled token and of the most likely
// alternatives, from the model's own distribution (the log-softmax of the
// logits, before penalties, temperature or truncation), as OpenAI's
// `logprobs` and llama.cpp's `n_probs` report them.
#ifndef EDGELLM_ENGINE_TOKEN_LOGPROBS_H_
#define EDGELLM_ENGINE_TOKEN_LOGPROBS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// The most alternatives a request may ask for (OpenAI's limit).
inline constexpr int32_t kMaxTopLogprobs = 20;

struct TokenLogprob {
  TokenId id = -1;
  float logprob = 0.0f;
};

struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // most likely first; ties by lower id
};

// The log-probability of `chosen` under `logits` and the `top_n` (clamped to
// kMaxTopLogprobs) most likely tokens. One pass for the normalizer and a
// partial selection: O(vocab) per token.
TokenLogprobs ComputeLogprobs(absl::Span<const float> logits, TokenId chosen, int32_t top_n);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TOKEN_LOGPROBS_H_
