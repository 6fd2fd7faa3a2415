#include "daemon/serve/prefix_cache.h"

#include <algorithm>

namespace edgellm::serve {

PrefixCache::Hit PrefixCache::Take(const std::vector<engine::TokenId>& prompt) {
  auto best = entries_.end();
  size_t best_length = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const size_t limit = std::min(it->tokens.size(), prompt.size());
    const size_t common = std::mismatch(prompt.begin(), prompt.begin() + limit, it->tokens.begin()).first - prompt.begin();
    if (common > best_length) {
      best = it;
      best_length = common;
    }
  }
  Hit hit;
  if (best == entries_.end() || prompt.empty()) return hit;
  hit.reused = static_cast<int32_t>(std::min(best_length, prompt.size() - 1));
  if (hit.reused == 0) return hit;
  hit.cache = std::move(best->cache);
  hit.cache->Truncate(hit.reused);
  entries_.erase(best);
  return hit;
}

void PrefixCache::Put(std::vector<engine::TokenId> tokens, std::unique_ptr<engine::KvCache> cache) {
  if (max_entries_ == 0 || tokens.empty()) return;
  entries_.push_front({std::move(tokens), std::move(cache)});
  while (entries_.size() > max_entries_) entries_.pop_back();
}

}  // namespace edgellm::serve
