#include "daemon/engine/kv_cache.h"

#include "common/str_cat.h"
#include "daemon/engine/kv_block_pool.h"

namespace edgellm::engine {

KvCache::KvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity, uint64_t prefix_space)
    : pool_(std::move(pool)), capacity_(capacity), prefix_space_(prefix_space) {
  // Room for every position up front, so a growing sequence never reallocates mid-decode.
  tokens_.reserve(static_cast<size_t>(capacity));
  block_table_.reserve(static_cast<size_t>(pool_->BlocksFor(capacity)));
}

KvCache::~KvCache() {
  // A partly filled last block stays reusable too, as the pool's full ones do.
  const int32_t block_size = pool_->block_size();
  const size_t tail = static_cast<size_t>(length() / block_size);
  if (pool_->prefix_caching() && length() % block_size != 0 && tail < block_table_.size() &&
      pool_->holders(block_table_[tail]) == 1) {
    pool_->RegisterTail(block_table_[tail], tail > 0 ? block_table_[tail - 1] : -1,
                        absl::MakeConstSpan(tokens_).subspan(tail * block_size), prefix_space_);
  }
  Truncate(0);
}

uint64_t KvCache::bytes() const { return block_table_.size() * pool_->block_bytes(); }

void KvCache::Truncate(int32_t length) {
  if (length < 0) length = 0;
  if (length < this->length()) tokens_.resize(static_cast<size_t>(length));
  const size_t keep = static_cast<size_t>(pool_->BlocksFor(this->length()));
  // The last block first, so a chain's tail is evicted before its head.
  while (block_table_.size() > keep) {
    pool_->Release(block_table_.back());
    block_table_.pop_back();
  }
}

int32_t KvCache::BlocksToGrow(int32_t positions) const {
  if (positions <= length()) return 0;
  int32_t blocks = std::max(0, pool_->BlocksFor(positions) - static_cast<int32_t>(block_table_.size()));
  const size_t write_block = static_cast<size_t>(length() / pool_->block_size());
  if (write_block < block_table_.size() && pool_->holders(block_table_[write_block]) > 1) ++blocks;
  return blocks;
}

absl::Status KvCache::Reserve(int32_t count) {
  const int64_t target = static_cast<int64_t>(length()) + count;
  if (target > capacity_) {
    return absl::OutOfRangeError(
        edgellm::StrCat("kv cache: ", target, " positions exceed its capacity of ", capacity_));
  }
  const int32_t needed = BlocksToGrow(static_cast<int32_t>(target));
  if (needed > pool_->available_blocks()) {
    return absl::ResourceExhaustedError(edgellm::StrCat("kv cache: needs ", needed, " more blocks, the pool has ",
                                                        pool_->available_blocks(), " available"));
  }
  // The block the next position goes to must be this cache's alone, and no
  // longer registered under content that is about to change.
  const size_t write_block = static_cast<size_t>(length() / pool_->block_size());
  if (write_block < block_table_.size()) {
    const int32_t block = block_table_[write_block];
    if (pool_->holders(block) > 1) {
      absl::StatusOr<int32_t> copy = pool_->Allocate();
      if (!copy.ok()) return copy.status();
      pool_->CopyBlock(block, *copy);
      pool_->Release(block);
      block_table_[write_block] = *copy;
    } else if (pool_->registered(block)) {
      pool_->Unregister(block);
    }
  }
  while (static_cast<int64_t>(block_table_.size()) * pool_->block_size() < target) {
    absl::StatusOr<int32_t> block = pool_->Allocate();
    if (!block.ok()) return block.status();
    block_table_.push_back(*block);
  }
  return absl::OkStatus();
}

void KvCache::Append(absl::Span<const TokenId> tokens) {
  const int32_t block_size = pool_->block_size();
  for (TokenId token : tokens) {
    tokens_.push_back(token);
    if (length() % block_size != 0 || !pool_->prefix_caching()) continue;
    const size_t full = static_cast<size_t>(length() / block_size) - 1;
    const int32_t parent = full > 0 ? block_table_[full - 1] : -1;
    block_table_[full] = pool_->Register(block_table_[full], parent,
                                         absl::MakeConstSpan(tokens_).subspan(full * block_size, block_size),
                                         prefix_space_);
  }
}

}  // namespace edgellm::engine
