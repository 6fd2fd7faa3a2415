#include "daemon/engine/generator.h"

#include <chrono>

#include "common/str_cat.h"
#include "common/status_macros.h"

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

  while (true) {
    const GenerationState::Step step = state.Advance(logits);
    if (!step.text.empty() && sink && !sink(step.text)) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    if (step.finished) {
      result.finish_reason = step.finish_reason;
      break;
    }
    const Clock::time_point step_start = Clock::now();
    EDGELLM_RETURN_IF_ERROR(model.Forward({&step.token, 1}, cache.get(), /*all_logits=*/false, &logits));
    result.decode_seconds += SecondsSince(step_start);
    ++result.decode_steps;
  }
  result.prompt_ids = state.prompt_ids();
  result.token_ids = state.generated();
  result.text = state.text();
  return result;
}

}  // namespace edgellm::engine
