#include "daemon/engine/kv_cache.h"

#include <algorithm>

#include "daemon/engine/kv_cache_storage.h"

namespace edgellm::engine {

KvCache::KvCache(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {}
KvCache::~KvCache() = default;

int32_t KvCache::length() const { return storage_->length; }
int32_t KvCache::capacity() const { return storage_->capacity; }

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (const at::Tensor& t : storage_->keys) total += t.nbytes();
  for (const at::Tensor& t : storage_->values) total += t.nbytes();
  return total;
}

void KvCache::Truncate(int32_t length) { storage_->length = std::clamp(length, 0, storage_->length); }

}  // namespace edgellm::engine
