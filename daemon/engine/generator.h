// engine/generator.h — prompt in, tokens out: prefill the whole prompt in one
// forward, then one token per step until EOS, a stop string or max_tokens.
// With options.draft_tokens, each step also checks tokens drafted by prompt
// lookup or a draft model in the same forward and keeps those that stand
// under the speculative-sampling rule: the output (greedy) or its
// distribution (sampled) is the same, in fewer forwards.
#ifndef EDGELLM_ENGINE_GENERATOR_H_
#define EDGELLM_ENGINE_GENERATOR_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/generation_state.h"

namespace edgellm::engine {

struct GenerateResult {
  std::vector<TokenId> prompt_ids;
  std::vector<TokenId> token_ids;  // generated, EOS excluded
  std::string text;                // generated text, stop string excluded
  FinishReason finish_reason = FinishReason::kLength;
  double prefill_seconds = 0.0;    // the prompt's forward
  double decode_seconds = 0.0;     // every later forward
  int32_t decode_steps = 0;        // forwards after the prompt
  int32_t drafted_tokens = 0;      // speculative drafts checked
  int32_t accepted_tokens = 0;     // of those, the ones that stood

  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

// Receives text as soon as it is safe to show; returning false cancels.
using TextSink = std::function<bool(std::string_view text)>;

// Tokenizes `prompt` and generates. InvalidArgument for bad options, an empty
// prompt or one that does not fit the context; errors from the model pass
// through. Blocks; the sink runs on the calling thread.
absl::StatusOr<GenerateResult> Generate(const LlamaModel& model, std::string_view prompt,
                                        const GenerateOptions& options, const TextSink& sink = nullptr);

// Same, from token ids (the prompt is used as given: nothing is added).
absl::StatusOr<GenerateResult> GenerateFromTokens(const LlamaModel& model, std::vector<TokenId> prompt_ids,
                                                  const GenerateOptions& options, const TextSink& sink = nullptr);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GENERATOR_H_
