#include "daemon/engine/prompt_lookup.h"

#include <algorithm>

namespace edgellm::engine {

std::vector<TokenId> PromptLookupDraft(absl::Span<const TokenId> history, int32_t max_tokens, int32_t max_ngram) {
  const int64_t size = static_cast<int64_t>(history.size());
  for (int64_t n = std::min<int64_t>(max_ngram, size - 1); n >= 1 && max_tokens > 0; --n) {
    const absl::Span<const TokenId> suffix = history.subspan(size - n);
    // Most recent first: the start of an earlier occurrence, which must end before the suffix does.
    for (int64_t start = size - n - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), history.begin() + start)) continue;
      const int64_t from = start + n;
      const int64_t count = std::min<int64_t>(max_tokens, size - from);
      return std::vector<TokenId>(history.begin() + from, history.begin() + from + count);
    }
  }
  return {};
}

}  // namespace edgellm::engine
