#include "daemon/engine/generator.h"

#include <chrono>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/text_streamer.h"

namespace edgellm::engine {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

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
  EDGELLM_RETURN_IF_ERROR(options.sampling.Validate());
  if (options.max_tokens <= 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("max_tokens ", options.max_tokens, " must be positive"));
  }
  if (prompt_ids.empty()) return absl::InvalidArgumentError("the prompt is empty and the model adds no BOS");
  const int32_t context = model.context_length();
  if (static_cast<int64_t>(prompt_ids.size()) >= context) {
    return absl::InvalidArgumentError(edgellm::StrCat("the prompt has ", prompt_ids.size(),
                                                   " tokens; the context holds ", context));
  }

  GenerateResult result;
  result.prompt_ids = std::move(prompt_ids);
  std::unique_ptr<KvCache> cache = model.NewCache();
  Sampler sampler(options.sampling);
  TextStreamer streamer(options.stop);
  const Tokenizer& tokenizer = model.tokenizer();
  std::vector<TokenId> history = result.prompt_ids;
  std::vector<float> logits;

  const Clock::time_point prefill_start = Clock::now();
  EDGELLM_RETURN_IF_ERROR(model.Forward(result.prompt_ids, cache.get(), /*all_logits=*/false, &logits));
  result.prefill_seconds = SecondsSince(prefill_start);

  auto emit = [&](const std::string& text) {
    result.text += text;
    return text.empty() || !sink || sink(text);
  };
  while (true) {
    const TokenId token = sampler.Sample(logits, history);
    if (!options.ignore_eos && tokenizer.IsEndOfGeneration(token)) {
      result.finish_reason = FinishReason::kStop;
      break;
    }
    result.token_ids.push_back(token);
    history.push_back(token);
    if (!emit(streamer.Push(tokenizer.TokenToPiece(token)))) {
      result.finish_reason = FinishReason::kCancelled;
      return result;
    }
    if (streamer.stopped()) {
      result.finish_reason = FinishReason::kStop;
      return result;
    }
    if (static_cast<int32_t>(result.token_ids.size()) >= options.max_tokens || cache->length() >= context) {
      result.finish_reason = FinishReason::kLength;
      break;
    }
    const Clock::time_point step_start = Clock::now();
    EDGELLM_RETURN_IF_ERROR(model.Forward({&token, 1}, cache.get(), /*all_logits=*/false, &logits));
    result.decode_seconds += SecondsSince(step_start);
    ++result.decode_steps;
  }
  if (!emit(streamer.Flush())) result.finish_reason = FinishReason::kCancelled;
  return result;
}

}  // namespace edgellm::engine
