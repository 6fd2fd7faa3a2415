#include "daemon/engine/kv_prefix_index.h"

#include <algorithm>

namespace edgellm::engine {

uint64_t KvPrefixIndex::Hash(KvBlockParent parent, absl::Span<const TokenId> tokens) {
  // FNV-1a over the parent and the token ids.
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      h ^= (value >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<uint64_t>(static_cast<int64_t>(parent.block)));
  mix(parent.generation);
  for (TokenId t : tokens) mix(static_cast<uint64_t>(static_cast<uint32_t>(t)));
  return h;
}

int32_t KvPrefixIndex::Find(KvBlockParent parent, absl::Span<const TokenId> tokens) const {
  const auto [first, last] = by_hash_.equal_range(Hash(parent, tokens));
  for (auto it = first; it != last; ++it) {
    const Entry& entry = entries_.at(it->second);
    if (entry.parent == parent && std::equal(entry.tokens.begin(), entry.tokens.end(), tokens.begin(), tokens.end())) {
      return it->second;
    }
  }
  return -1;
}

KvPrefixIndex::Match KvPrefixIndex::LongestMatch(KvBlockParent parent, absl::Span<const TokenId> tokens) const {
  Match best;
  const auto [first, last] = by_parent_.equal_range(KeyOf(parent));
  for (auto it = first; it != last; ++it) {
    const std::vector<TokenId>& held = entries_.at(it->second).tokens;
    const size_t limit = std::min(held.size(), tokens.size());
    const int32_t common =
        static_cast<int32_t>(std::mismatch(held.begin(), held.begin() + limit, tokens.begin()).first - held.begin());
    if (common > best.length) best = {it->second, common};
  }
  return best;
}

void KvPrefixIndex::Insert(int32_t block, KvBlockParent parent, absl::Span<const TokenId> tokens) {
  const uint64_t hash = Hash(parent, tokens);
  entries_.emplace(block, Entry{parent, std::vector<TokenId>(tokens.begin(), tokens.end()), hash});
  by_hash_.emplace(hash, block);
  by_parent_.emplace(KeyOf(parent), block);
}

void KvPrefixIndex::Erase(int32_t block) {
  auto entry = entries_.find(block);
  if (entry == entries_.end()) return;
  const auto [first, last] = by_hash_.equal_range(entry->second.hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == block) {
      by_hash_.erase(it);
      break;
    }
  }
  const auto [children, children_end] = by_parent_.equal_range(KeyOf(entry->second.parent));
  for (auto it = children; it != children_end; ++it) {
    if (it->second == block) {
      by_parent_.erase(it);
      break;
    }
  }
  entries_.erase(entry);
}

}  // namespace edgellm::engine
