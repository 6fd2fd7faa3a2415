// serve/prefix_cache.h — KV caches of finished sequences, kept for reuse.
//
// A sequence that ends leaves its cache here, keyed by exactly the tokens it
// holds. A new request takes the entry that shares the longest prefix of
// tokens with its prompt, and only the rest of the prompt is computed: a
// second turn that resends the conversation, or requests with a common
// system prompt, skip their shared prefix. Entries are moved out, never
// shared, and matched on tokens alone, so a request can only continue from
// a cache that holds exactly its own prefix. LRU, bounded by entry count.
// Not thread-safe: owned by the scheduler thread.
#ifndef EDGELLM_SERVE_PREFIX_CACHE_H_
#define EDGELLM_SERVE_PREFIX_CACHE_H_

#include <list>
#include <memory>
#include <vector>

#include "daemon/engine/kv_cache.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::serve {

class PrefixCache {
 public:
  explicit PrefixCache(size_t max_entries) : max_entries_(max_entries) {}

  struct Hit {
    std::unique_ptr<engine::KvCache> cache;  // null on a miss
    int32_t reused = 0;                      // prompt tokens already in it
  };
  // Takes the entry sharing the longest token prefix with `prompt`, truncated
  // to that prefix. At most prompt.size() - 1 tokens are reused, so the last
  // prompt token always runs (its logits start the generation).
  Hit Take(const std::vector<engine::TokenId>& prompt);

  // Keeps `cache`, which holds exactly `tokens`; evicts the least recently
  // used entry beyond the bound.
  void Put(std::vector<engine::TokenId> tokens, std::unique_ptr<engine::KvCache> cache);

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<engine::TokenId> tokens;
    std::unique_ptr<engine::KvCache> cache;
  };
  size_t max_entries_;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_PREFIX_CACHE_H_
