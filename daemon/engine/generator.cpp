#include "daemon/engine/generator.h"

#include <chrono>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/prompt_lookup.h"

namespace edgellm::engine {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

double GenerateResult::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prefill_seconds : 0.0;
}

double GenerateResult::decode_tokens_per_second() const {
  return decode_seconds > 0 ? decode_steps / decode_seconds : 0.0;
}

absl::StatusOr<GenerateResult> Generate(const LlamaModel& model, std::string_view prompt,
                                        const GenerateOptions& options, const TextSink& sink) {
  return GenerateFromTokens(model, model.tokenizer().Encode(prompt, options.add_special, options.parse_special),
                            options, sink);
}

absl::StatusOr<GenerateResult> GenerateFromTokens(const LlamaModel& model, std::vector<TokenId> prompt_ids,
                                                  const GenerateOptions& options, const TextSink& sink) {
  EDGELLM_RETURN_IF_ERROR(ValidateGeneration(prompt_ids, options, model.context_length()));
  GenerationState state(model.tokenizer(), std::move(prompt_ids), options, model.context_length());
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, model.NewCache());
  GenerateResult result;
  std::vector<float> logits;

  const Clock::time_point prefill_start = Clock::now();
  EDGELLM_RETURN_IF_ERROR(model.Forward(state.prompt_ids(), cache.get(), /*all_logits=*/false, &logits));
  result.prefill_seconds = SecondsSince(prefill_start);

  // Greedy choices are deterministic, so drafted tokens can be checked
  // against them; sampled ones would need the accept/reject rule.
  const bool speculate = options.draft_tokens > 0 && options.sampling.temperature <= 0.0f;
  const size_t vocab = static_cast<size_t>(model.config().n_vocab);
  std::vector<TokenId> history, tokens;
  GenerationState::Step step = state.Advance(logits);
  while (true) {
    if (!step.text.empty() && sink && !sink(step.text)) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    if (step.finished) {
      result.finish_reason = step.finish_reason;
      break;
    }
    tokens.assign(1, step.token);
    if (speculate) {
      history = state.prompt_ids();
      history.insert(history.end(), state.generated().begin(), state.generated().end());
      const int32_t room = std::min(options.max_tokens - static_cast<int32_t>(state.generated().size()),
                                    cache->capacity() - cache->length() - 1);
      const std::vector<TokenId> draft = PromptLookupDraft(history, std::min(options.draft_tokens, room));
      tokens.insert(tokens.end(), draft.begin(), draft.end());
    }
    const int32_t length_before = cache->length();
    const Clock::time_point step_start = Clock::now();
    EDGELLM_RETURN_IF_ERROR(model.Forward(tokens, cache.get(), /*all_logits=*/tokens.size() > 1, &logits));
    result.decode_seconds += SecondsSince(step_start);
    ++result.decode_steps;
    result.drafted_tokens += static_cast<int32_t>(tokens.size()) - 1;
    // Row i holds the logits after tokens[i]; draft i + 1 stands while the model picks it.
    size_t row = 0;
    step = state.Advance(absl::MakeConstSpan(logits).subspan(0, vocab));
    while (row + 1 < tokens.size() && !step.finished && step.token == tokens[row + 1]) {
      ++result.accepted_tokens;
      if (!step.text.empty() && sink && !sink(step.text)) break;
      ++row;
      step = state.Advance(absl::MakeConstSpan(logits).subspan(row * vocab, vocab));
    }
    if (row + 1 < tokens.size()) {
      // The cache holds the rejected drafts too: forget them.
      cache->Truncate(length_before + static_cast<int32_t>(row) + 1);
      if (!step.finished && step.token == tokens[row + 1]) {  // the sink cancelled mid-draft
        result.finish_reason = FinishReason::kCancelled;
        break;
      }
    }
  }
  result.prompt_ids = state.prompt_ids();
  result.token_ids = state.generated();
  result.text = state.text();
  return result;
}

}  // namespace edgellm::engine
