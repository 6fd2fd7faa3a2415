#include "daemon/engine/drafter.h"

#include <algorithm>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/prompt_lookup.h"

namespace edgellm::engine {

std::vector<DraftToken> Draft::ForSampler() const {
  std::vector<DraftToken> out;
  const size_t vocab = tokens.empty() || probs.empty() ? 0 : probs.size() / tokens.size();
  for (size_t i = 0; i < tokens.size(); ++i) {
    out.push_back({tokens[i], vocab == 0 ? absl::Span<const float>() : absl::MakeConstSpan(probs).subspan(i * vocab, vocab)});
  }
  return out;
}

void Draft::Truncate(size_t n) {
  if (n >= tokens.size()) return;
  if (!probs.empty()) probs.resize(n * (probs.size() / tokens.size()));
  tokens.resize(n);
}

absl::StatusOr<Draft> PromptLookupDrafter::Propose(absl::Span<const TokenId> history, int32_t max_tokens) {
  Draft draft;
  draft.tokens = PromptLookupDraft(history, max_tokens);
  return draft;
}

absl::StatusOr<std::unique_ptr<ModelDrafter>> ModelDrafter::Create(const LlamaModel& target, const LlamaModel& draft,
                                                                   const SamplingParams& sampling, int32_t capacity) {
  const std::vector<std::string>& target_tokens = target.tokenizer().vocab().tokens;
  const std::vector<std::string>& draft_tokens = draft.tokenizer().vocab().tokens;
  if (target_tokens.size() != draft_tokens.size() || target.config().n_vocab != draft.config().n_vocab) {
    return absl::InvalidArgumentError(edgellm::StrCat("draft model: its vocabulary has ", draft_tokens.size(),
                                                      " tokens, the model's ", target_tokens.size()));
  }
  const auto mismatch = std::mismatch(target_tokens.begin(), target_tokens.end(), draft_tokens.begin());
  if (mismatch.first != target_tokens.end()) {
    return absl::InvalidArgumentError(edgellm::StrCat("draft model: token ", mismatch.first - target_tokens.begin(),
                                                      " is '", *mismatch.second, "', the model's is '",
                                                      *mismatch.first, "'"));
  }
  const int32_t most = std::min(target.context_length(), draft.context_length());
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache,
                           draft.NewCache(capacity > 0 ? std::min(capacity, most) : most));
  return std::unique_ptr<ModelDrafter>(new ModelDrafter(draft, std::move(cache), sampling));
}

namespace {
// The drafter's random stream must differ from the target sampler's, which
// starts from the same seed.
SamplingParams WithDraftSeed(SamplingParams sampling) {
  sampling.seed ^= 0x9e3779b97f4a7c15ULL;
  return sampling;
}
}  // namespace

ModelDrafter::ModelDrafter(const LlamaModel& draft, std::unique_ptr<KvCache> cache, const SamplingParams& sampling)
    : draft_(draft),
      cache_(std::move(cache)),
      greedy_(sampling.temperature <= 0.0f),
      sampler_(WithDraftSeed(sampling)) {}

absl::StatusOr<Draft> ModelDrafter::Propose(absl::Span<const TokenId> history, int32_t max_tokens) {
  Draft draft;
  max_tokens = std::min<int64_t>(max_tokens, cache_->capacity() - static_cast<int64_t>(history.size()));
  if (max_tokens <= 0 || history.empty()) return draft;
  // Keep what the cache shares with the history, except the history's last
  // token: running it gives the logits the draft starts from.
  const std::vector<TokenId>& cached = cache_->tokens();
  size_t common = 0;
  while (common < cached.size() && common + 1 < history.size() && cached[common] == history[common]) ++common;
  cache_->Truncate(static_cast<int32_t>(common));

  std::vector<float> logits, distribution;
  EDGELLM_RETURN_IF_ERROR(draft_.Forward(history.subspan(common), cache_.get(), /*all_logits=*/false, &logits));
  std::vector<TokenId> sequence(history.begin(), history.end());  // for the repetition penalty
  for (int32_t i = 0; i < max_tokens; ++i) {
    const TokenId token = sampler_.Sample(logits, sequence, nullptr, greedy_ ? nullptr : &distribution);
    draft.tokens.push_back(token);
    if (!greedy_) draft.probs.insert(draft.probs.end(), distribution.begin(), distribution.end());
    sequence.push_back(token);
    if (i + 1 < max_tokens) {
      EDGELLM_RETURN_IF_ERROR(draft_.Forward({&token, 1}, cache_.get(), /*all_logits=*/false, &logits));
    }
  }
  return draft;
}

}  // namespace edgellm::engine
