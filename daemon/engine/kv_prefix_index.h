// engine/kv_prefix_index.h — KV blocks found by their content.
//
// A block's content is the tokens it holds (all of them for a full block, the
// first few for the last block of a finished sequence) and the block before
// it (its parent), so a chain of lookups from the first block finds exactly
// the blocks computed for a given token prefix and nothing else: two prompts
// share a position only if they agree on every token up to it. A parent is named
// by its id and its allocation generation, so whatever the eviction order, a
// block whose parent was reused for other tokens can never match. Lookups compare the tokens
// themselves; the hash only narrows the search.
// Not thread-safe: owned by a KvBlockPool.
#ifndef EDGELLM_ENGINE_KV_PREFIX_INDEX_H_
#define EDGELLM_ENGINE_KV_PREFIX_INDEX_H_

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
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
  // The registered block holding exactly `tokens` after `parent`, or -1.
  int32_t Find(KvBlockParent parent, absl::Span<const TokenId> tokens) const;
  struct Match {
    int32_t block = -1;
    int32_t length = 0;  // leading tokens it shares
  };
  // Of the blocks registered after `parent`, the one whose tokens begin with
  // the longest run of `tokens` (length 0 when none shares even the first).
  Match LongestMatch(KvBlockParent parent, absl::Span<const TokenId> tokens) const;
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

  using ParentKey = std::pair<int32_t, uint64_t>;
  static ParentKey KeyOf(KvBlockParent parent) { return {parent.block, parent.generation}; }

  std::unordered_map<int32_t, Entry> entries_;          // by block
  std::unordered_multimap<uint64_t, int32_t> by_hash_;  // content hash -> block
  std::multimap<ParentKey, int32_t> by_parent_;         // parent -> the blocks after it
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_PREFIX_INDEX_H_
