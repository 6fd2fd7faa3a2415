// engine/kv_cache.h — one sequence's keys and values: a block table into a
// KvBlockPool.
//
// Position p lives in block block_table()[p / block_size] at row
// p % block_size. The cache knows the tokens it holds, so the pool can share
// its full blocks with other sequences that begin the same way. A forward
// first Reserve()s room, writes the new keys and values into the pool's
// blocks, then Append()s the tokens. Not thread-safe: it belongs to its
// pool's thread.
#ifndef EDGELLM_ENGINE_KV_CACHE_H_
#define EDGELLM_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class KvBlockPool;

class KvCache {
 public:
  // Use KvBlockPool::NewCache or LlamaModel::NewCache.
  KvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity, uint64_t prefix_space = 0);
  ~KvCache();  // gives every block back to the pool
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Positions filled so far.
  int32_t length() const { return static_cast<int32_t>(tokens_.size()); }
  // Positions it may grow to.
  int32_t capacity() const { return capacity_; }
  // The tokens whose keys and values it holds, one per position.
  const std::vector<TokenId>& tokens() const { return tokens_; }
  const std::vector<int32_t>& block_table() const { return block_table_; }
  KvBlockPool& pool() const { return *pool_; }
  // Memory of the blocks it holds (shared blocks counted in full).
  uint64_t bytes() const;

  // Forgets every position past `length` (0 clears) and gives back the blocks
  // no longer needed; no effect if it is already that short.
  void Truncate(int32_t length);

  // Blocks the pool must still supply for the cache to hold `positions`,
  // counting the copy of a shared block it would have to write into.
  int32_t BlocksToGrow(int32_t positions) const;
  // Makes room for `count` more positions: takes blocks from the pool, and
  // copies a block shared with other caches before it is written. OutOfRange
  // beyond capacity(), ResourceExhausted when the pool has too few blocks; the
  // cache is unchanged on error.
  absl::Status Reserve(int32_t count);
  // Records that `tokens` now fill the next positions, whose keys and values
  // were written into the reserved rows; registers the blocks this completes.
  void Append(absl::Span<const TokenId> tokens);

 private:
  friend class KvBlockPool;  // starts a cache with shared prefix blocks
  std::shared_ptr<KvBlockPool> pool_;
  int32_t capacity_;
  uint64_t prefix_space_;  // see KvBlockPool::NewCache
  std::vector<TokenId> tokens_;
  std::vector<int32_t> block_table_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_CACHE_H_
