#include "daemon/engine/generation_state.h"

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::engine {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

absl::Status ValidateGeneration(absl::Span<const TokenId> prompt_ids, const GenerateOptions& options,
                                int32_t context_length) {
  EDGELLM_RETURN_IF_ERROR(options.sampling.Validate());
  if (options.draft_tokens < 0 || options.draft_tokens > 64) {
    return absl::InvalidArgumentError(edgellm::StrCat("draft_tokens ", options.draft_tokens, " is outside 0..64"));
  }
  if (options.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("top_logprobs ", options.top_logprobs, " is above ", kMaxTopLogprobs));
  }
  if (options.max_tokens <= 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("max_tokens ", options.max_tokens, " must be positive"));
  }
  if (prompt_ids.empty()) return absl::InvalidArgumentError("the prompt is empty and the model adds no BOS");
  if (static_cast<int64_t>(prompt_ids.size()) >= context_length) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("the prompt has ", prompt_ids.size(), " tokens; the context holds ", context_length));
  }
  return absl::OkStatus();
}

GenerationState::GenerationState(const Tokenizer& tokenizer, std::vector<TokenId> prompt_ids,
                                 const GenerateOptions& options, int32_t context_length)
    : tokenizer_(tokenizer),
      options_(options),
      context_length_(context_length),
      prompt_ids_(std::move(prompt_ids)),
      history_(prompt_ids_),
      sampler_(options.sampling),
      streamer_(options.stop) {
  if (options_.grammar == nullptr) return;
  if (!options_.grammar_trigger.empty()) {
    awaiting_trigger_ = true;
    return;
  }
  absl::StatusOr<grammar::StateId> start = options_.grammar->Start();
  if (start.ok()) {
    grammar_state_ = *start;
  } else {
    grammar_error_ = start.status();
  }
}

absl::Status GenerationState::FollowGrammar(TokenId token, const std::string& piece) {
  if (grammar_active()) {
    absl::StatusOr<grammar::StateId> next = options_.grammar->AdvanceToken(grammar_state_, token);
    if (!next.ok()) return next.status();
    grammar_state_ = *next;
    return absl::OkStatus();
  }
  if (!awaiting_trigger_) return absl::OkStatus();
  since_trigger_search_ += piece;
  const std::string& trigger = options_.grammar_trigger;
  const size_t found = since_trigger_search_.find(trigger);
  if (found == std::string::npos) {
    // Only a tail shorter than the trigger can still be part of it.
    if (since_trigger_search_.size() >= trigger.size()) {
      since_trigger_search_.erase(0, since_trigger_search_.size() - trigger.size() + 1);
    }
    return absl::OkStatus();
  }
  awaiting_trigger_ = false;
  absl::StatusOr<grammar::StateId> start = options_.grammar->Start();
  if (!start.ok()) return start.status();
  absl::StatusOr<grammar::StateId> now = options_.grammar->Advance(*start, since_trigger_search_.substr(found));
  if (!now.ok()) return now.status();
  // A trigger the grammar does not begin with leaves the output free.
  grammar_state_ = *now == grammar::kDeadState ? -1 : *now;
  since_trigger_search_.clear();
  return absl::OkStatus();
}

size_t GenerationState::GrammarAllowedDrafts(absl::Span<const TokenId> drafts) {
  if (!grammar_active()) return drafts.size();
  grammar::StateId state = grammar_state_;
  for (size_t i = 0; i < drafts.size(); ++i) {
    if (options_.grammar->Complete(state) || tokenizer_.TokenToPiece(drafts[i]).empty()) return i;
    absl::StatusOr<grammar::StateId> next = options_.grammar->AdvanceToken(state, drafts[i]);
    if (!next.ok() || *next == grammar::kDeadState) return i;
    state = *next;
  }
  return drafts.size();
}

GenerationState::Step GenerationState::Advance(absl::Span<const float> logits) { return AdvanceOne(logits, nullptr); }

GenerationState::Step GenerationState::AdvanceSpeculative(absl::Span<const float> logits,
                                                          absl::Span<const DraftToken> drafts) {
  const size_t vocab = logits.size() / (drafts.size() + 1);
  Step combined;
  for (size_t row = 0; row <= drafts.size(); ++row) {
    const DraftToken* draft = row < drafts.size() ? &drafts[row] : nullptr;
    Step step = AdvanceOne(logits.subspan(row * vocab, vocab), draft);
    combined.token = step.token;
    combined.tokens.insert(combined.tokens.end(), step.tokens.begin(), step.tokens.end());
    for (TokenLogprobs& l : step.logprobs) combined.logprobs.push_back(std::move(l));
    combined.text += step.text;
    combined.finished = step.finished;
    combined.finish_reason = step.finish_reason;
    if (draft == nullptr || step.token != draft->id) break;
    ++combined.accepted_drafts;
    if (step.finished) break;
  }
  return combined;
}

GenerationState::Step GenerationState::AdvanceOne(absl::Span<const float> logits, const DraftToken* draft) {
  Step step;
  const auto fail = [&](absl::Status status) {
    step.finished = true;
    step.finish_reason = FinishReason::kStop;
    step.status = std::move(status);
    return step;
  };
  if (!grammar_error_.ok()) return fail(grammar_error_);
  absl::Span<const uint64_t> allowed;
  if (grammar_active()) {
    if (options_.grammar->Complete(grammar_state_)) {
      // Nothing may follow: the output is done without asking the model.
      step.finished = true;
      step.finish_reason = FinishReason::kStop;
      step.text = streamer_.Flush();
      text_ += step.text;
      return step;
    }
    absl::StatusOr<absl::Span<const uint64_t>> mask = options_.grammar->Mask(grammar_state_);
    if (!mask.ok()) return fail(mask.status());
    allowed = *mask;
  }
  const TokenId token = sampler_.Sample(logits, history_, draft, nullptr, allowed);
  if (token < 0) {
    return fail(absl::FailedPreconditionError(
        "no token of the model's vocabulary can continue the output the grammar requires here"));
  }
  if (tokenizer_.IsEndOfGeneration(token) && (!options_.ignore_eos || grammar_active())) {
    step.finished = true;
    step.finish_reason = FinishReason::kStop;
    step.text = streamer_.Flush();
  } else {
    step.token = token;
    step.tokens.push_back(token);
    if (options_.top_logprobs >= 0) step.logprobs.push_back(ComputeLogprobs(logits, token, options_.top_logprobs));
    generated_.push_back(token);
    history_.push_back(token);
    const std::string piece = tokenizer_.TokenToPiece(token);
    if (options_.grammar != nullptr) {
      if (absl::Status s = FollowGrammar(token, piece); !s.ok()) return fail(std::move(s));
    }
    step.text = streamer_.Push(piece);
    if (streamer_.stopped()) {
      step.finished = true;
      step.finish_reason = FinishReason::kStop;
    } else if (grammar_active() && options_.grammar->Complete(grammar_state_)) {
      step.finished = true;
      step.finish_reason = FinishReason::kStop;
      step.text += streamer_.Flush();
    } else if (static_cast<int32_t>(generated_.size()) >= options_.max_tokens ||
               prompt_ids_.size() + generated_.size() > static_cast<size_t>(context_length_)) {
      // Out of tokens, or the new token has no room left in the cache.
      step.finished = true;
      step.finish_reason = FinishReason::kLength;
      step.text += streamer_.Flush();
    }
  }
  text_ += step.text;
  return step;
}

}  // namespace edgellm::engine
