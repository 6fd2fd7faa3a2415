#include "daemon/engine/token_logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgellm::engine {

TokenLogprobs ComputeLogprobs(absl::Span<const float> logits, TokenId chosen, int32_t top_n) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l - max_logit);
  const double log_normalizer = max_logit + std::log(sum);
  const auto logprob = [&](TokenId id) {
    return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - log_normalizer);
  };
  TokenLogprobs out;
  out.chosen = {chosen, chosen >= 0 && static_cast<size_t>(chosen) < logits.size() ? logprob(chosen) : 0.0f};
  const size_t n = std::min<size_t>(static_cast<size_t>(std::clamp(top_n, 0, kMaxTopLogprobs)), logits.size());
  if (n == 0) return out;
  // A running list of the n best, kept sorted: n is at most 20.
  std::vector<TokenId> best;
  best.reserve(n + 1);
  const auto better = [&](TokenId a, TokenId b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  };
  for (size_t i = 0; i < logits.size(); ++i) {
    const TokenId id = static_cast<TokenId>(i);
    if (best.size() == n && !better(id, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), id, better), id);
    if (best.size() > n) best.pop_back();
  }
  for (TokenId id : best) out.top.push_back({id, logprob(id)});
  return out;
}

}  // namespace edgellm::engine
