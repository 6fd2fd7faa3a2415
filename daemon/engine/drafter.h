// engine/drafter.h — where speculative decoding's draft tokens come from.
//
// Each step the drafter proposes the tokens it expects next; the target model
// checks them all in one forward (GenerationState::AdvanceSpeculative keeps
// those that stand). Prompt lookup copies what followed an earlier
// occurrence of the sequence's tail: free, and good when the output repeats
// the input. A draft model — a smaller GGUF with the same vocabulary — runs
// its own forwards and KV cache: it costs a little per token and guesses free
// text too.
#ifndef EDGELLM_ENGINE_DRAFTER_H_
#define EDGELLM_ENGINE_DRAFTER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/sampler.h"

namespace edgellm::engine {

// Up to max_tokens proposed tokens and, for a drafter that sampled them, the
// probabilities it drew each from ([tokens, vocab] row-major; empty when it
// was certain of every one).
struct Draft {
  std::vector<TokenId> tokens;
  std::vector<float> probs;

  // The tokens as the sampler's draft rule takes them; valid while *this is.
  std::vector<DraftToken> ForSampler() const;
  // Keeps the first `n` tokens (and their probabilities).
  void Truncate(size_t n);
};

// Not thread-safe: one per sequence.
class Drafter {
 public:
  virtual ~Drafter() = default;
  // `history`: the sequence so far, prompt included; its last token has not
  // been through the target model yet.
  virtual absl::StatusOr<Draft> Propose(absl::Span<const TokenId> history, int32_t max_tokens) = 0;
};

class PromptLookupDrafter : public Drafter {
 public:
  absl::StatusOr<Draft> Propose(absl::Span<const TokenId> history, int32_t max_tokens) override;
};

class ModelDrafter : public Drafter {
 public:
  // InvalidArgument unless `draft` has the target's vocabulary (same size,
  // same token texts). The drafter samples with `sampling` (its own seed
  // stream); greedy sampling drafts the argmax. Its KV cache holds
  // `capacity` positions (0: as many as both models' contexts allow).
  // `draft` must outlive it.
  static absl::StatusOr<std::unique_ptr<ModelDrafter>> Create(const LlamaModel& target, const LlamaModel& draft,
                                                              const SamplingParams& sampling, int32_t capacity = 0);

  absl::StatusOr<Draft> Propose(absl::Span<const TokenId> history, int32_t max_tokens) override;

 private:
  ModelDrafter(const LlamaModel& draft, std::unique_ptr<KvCache> cache, const SamplingParams& sampling);

  const LlamaModel& draft_;
  std::unique_ptr<KvCache> cache_;  // holds cache_->tokens(): a prefix of the history
  const bool greedy_;               // drafts are the argmax, certain (no probabilities)
  Sampler sampler_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_DRAFTER_H_
