// engine/sampler.h — picks the next token from logits.
//
// A chain of small stages over one reused candidate buffer, in this order:
// repetition penalty -> (greedy stops here when temperature <= 0) ->
// temperature -> top-k -> top-p -> min-p -> a seeded random pick.
// The same seed and the same logits always give the same tokens, on every
// platform (the random numbers come from std::mt19937_64 alone).
#ifndef EDGELLM_ENGINE_SAMPLER_H_
#define EDGELLM_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// The id of the first largest logit (ties go to the lowest id; a NaN is
// never the largest; 0 when there is no number at all). Sixteen lanes keep
// their own maximum and where it was, so the compiler can vectorize the
// scan: a scalar one was 1% of a small model's decode step (49k logits).
TokenId ArgMax(absl::Span<const float> logits);

// Whether no logit is a NaN or an infinity: a model gone bad shows as such
// logits. Sixteen lanes at a time with no early exit, so the compiler can
// vectorize it: the scalar scan was 3% of a sixteen-sequence batch's step on
// the thread that runs the forward (16 rows of 49k logits).
bool AllFinite(absl::Span<const float> logits);

struct SamplingParams {
  float temperature = 0.8f;    // <= 0: greedy (argmax)
  int32_t top_k = 40;          // 0: off
  float top_p = 0.95f;         // 1: off
  float min_p = 0.05f;         // 0: off
  float repeat_penalty = 1.0f;  // 1: off; > 1 discourages tokens seen in the window
  int32_t repeat_last_n = 64;  // window of the repetition penalty
  uint64_t seed = 0;

  // InvalidArgument naming the first out-of-range field.
  absl::Status Validate() const;
};

// A token proposed by a speculative drafter, with the drafter's probability
// of every token of the vocabulary when it drew it; empty `probs` means the
// drafter was certain (prompt lookup, or a greedy draft model).
struct DraftToken {
  TokenId id;
  absl::Span<const float> probs;
};

// Not thread-safe: one sampler per sequence.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // `history` is every token of the sequence so far (prompt included).
  // With a draft, the speculative-sampling rule, which leaves the distribution
  // of the result unchanged: the draft stands with probability min(1, p/q),
  // else a token is drawn from max(0, p - q) renormalised (p: this sampler's
  // probabilities, q: the draft's). Greedy sampling ignores the draft: the
  // argmax either equals it or not. `distribution`, when given, receives the
  // probabilities the token was drawn from, vocabulary-wide (one-hot when
  // greedy): what a draft model reports as q. A non-empty `allowed` (one bit
  // per token, as a grammar's mask) leaves out every token whose bit is 0
  // before any other stage; -1 when it leaves none.
  TokenId Sample(absl::Span<const float> logits, absl::Span<const TokenId> history,
                 const DraftToken* draft = nullptr, std::vector<float>* distribution = nullptr,
                 absl::Span<const uint64_t> allowed = {});

 private:
  struct Candidate {
    TokenId id;
    float logit;
    float p;
  };
  // Higher logit first, equal logits by lower id: an order that std::sort
  // gives without the buffer std::stable_sort allocates.
  static bool Likelier(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
  // window_ := the distinct ids of the last repeat_last_n tokens of
  // `history` below `vocabulary`, sorted; empty without a penalty.
  void CollectPenaltyWindow(absl::Span<const TokenId> history, size_t vocabulary);
  float Penalized(float logit) const;  // a penalized token's logit
  void ApplyRepetitionPenalty(absl::Span<const TokenId> history);
  void ApplyTemperature();
  void KeepTopK();
  // The repetition penalty, temperature and top-k in one, for top-k under
  // the vocabulary's size: the same candidates in the same order as those
  // three stages leave, without a candidate for every token (below).
  void KeepLikeliest(absl::Span<const float> logits, absl::Span<const TokenId> history);
  void SortByLikelihood();  // into Likelier's order
  void Softmax();  // sorts by logit, descending, and fills p
  void KeepTopP();
  void KeepMinP();
  // Softmax, top-p, min-p and the pick, from the candidates the stages before left.
  TokenId Finish(size_t vocabulary, const DraftToken* draft, std::vector<float>* distribution);
  TokenId Pick();
  TokenId PickWithDraft(const DraftToken& draft);
  double Uniform();  // in [0, 1)

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<TokenId> window_;
  std::vector<float> block_bounds_, bound_order_;  // KeepLikeliest's, kept to reuse
  std::vector<Candidate> sort_buffer_;  // SortByLikelihood's
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SAMPLER_H_
