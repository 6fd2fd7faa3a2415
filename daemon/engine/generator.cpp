#include "daemon/engine/generator.h"

#include <chrono>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/draft_length.h"
#include "daemon/engine/drafter.h"

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
  // Every token but the first (from the prompt's forward) came from decoding,
  // several per forward when drafts stood.
  const size_t decoded = token_ids.empty() ? 0 : token_ids.size() - 1;
  return decode_seconds > 0 ? static_cast<double>(decoded) / decode_seconds : 0.0;
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
  EDGELLM_RETURN_IF_ERROR(
      model.Forward(state.prompt_ids(), cache.get(), /*all_logits=*/false, &logits, options.adapter));
  result.prefill_seconds = SecondsSince(prefill_start);

  std::unique_ptr<Drafter> drafter;
  if (options.draft_tokens > 0 && options.draft_model != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(drafter, ModelDrafter::Create(model, *options.draft_model, options.sampling));
  } else if (options.draft_tokens > 0) {
    drafter = std::make_unique<PromptLookupDrafter>();
  }
  DraftLength draft_length(options.draft_tokens, options.draft_row_cost);
  std::vector<TokenId> tokens;
  GenerationState::Step step = state.Advance(logits);
  while (true) {
    if (!step.text.empty() && sink && !sink(step.text)) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    if (!step.status.ok()) return step.status;
    if (step.finished) {
      result.finish_reason = step.finish_reason;
      break;
    }
    const Clock::time_point step_start = Clock::now();
    Draft draft;
    const int32_t wanted = drafter != nullptr ? draft_length.Next() : 0;
    if (wanted > 0) {
      const int32_t room = std::min(options.max_tokens - static_cast<int32_t>(state.generated().size()),
                                    cache->capacity() - cache->length() - 1);
      EDGELLM_ASSIGN_OR_RETURN(draft, drafter->Propose(state.history(), std::min(wanted, room)));
      draft.Truncate(state.GrammarAllowedDrafts(draft.tokens));
    }
    tokens.assign(1, step.token);
    tokens.insert(tokens.end(), draft.tokens.begin(), draft.tokens.end());
    const int32_t length_before = cache->length();
    EDGELLM_RETURN_IF_ERROR(
        model.Forward(tokens, cache.get(), /*all_logits=*/tokens.size() > 1, &logits, options.adapter));
    step = state.AdvanceSpeculative(logits, draft.ForSampler());
    // The cache holds the drafts that did not stand too: forget them.
    cache->Truncate(length_before + 1 + step.accepted_drafts);
    result.decode_seconds += SecondsSince(step_start);
    ++result.decode_steps;
    result.drafted_tokens += static_cast<int32_t>(draft.tokens.size());
    result.accepted_tokens += step.accepted_drafts;
    draft_length.Update(static_cast<int32_t>(draft.tokens.size()), step.accepted_drafts);
  }
  result.prompt_ids = state.prompt_ids();
  result.token_ids = state.generated();
  result.text = state.text();
  return result;
}

}  // namespace edgellm::engine
