// engine/kv_prefix_index.h — full KV blocks found by their content.
//
// A block's content is the tokens it holds and the block before it (its
// parent), so a chain of lookups from the first block finds exactly the
// blocks computed for a given token prefix and nothing else: two prompts share
// a block only if they agree on every token up to its end. A parent is named
// by its id and its allocation generation, so whatever the eviction order, a
// block whose parent was reused for other tokens can never match. Lookups compare the tokens
// themselves; the hash only narrows the search.
// Not thread-safe: owned by a KvBlockPool.
#ifndef EDGELLM_ENGINE_KV_PREFIX_INDEX_H_
#define EDGELLM_ENGINE_KV_PREFIX_INDEX_H_

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "absl/types/span.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

struct KvBlockParent {
  int32_t block = -1;       // -1: the first block of a sequence
  uint64_t generation = 0;  // the parent's allocation generation
  bool operator==(const KvBlockParent&) const = default;
};

class KvPrefixIndex {
 public:
  // The registered block holding `tokens` after `parent`, or -1.
  int32_t Find(KvBlockParent parent, absl::Span<const TokenId> tokens) const;
  // Registers `block` (not registered yet) under its content.
  void Insert(int32_t block, KvBlockParent parent, absl::Span<const TokenId> tokens);
  // Forgets `block`; no effect if it is not registered.
  void Erase(int32_t block);
  bool Contains(int32_t block) const { return entries_.count(block) > 0; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    KvBlockParent parent;
    std::vector<TokenId> tokens;
    uint64_t hash;
  };
  static uint64_t Hash(KvBlockParent parent, absl::Span<const TokenId> tokens);

  std::unordered_map<int32_t, Entry> entries_;          // by block
  std::unordered_multimap<uint64_t, int32_t> by_hash_;  // content hash -> block
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_PREFIX_INDEX_H_
