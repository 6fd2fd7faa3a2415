// engine/kv_cache.h — the keys and values of one sequence, for every layer.
//
// Preallocated to a fixed capacity of positions at creation, so decoding never
// allocates. Created by LlamaModel::NewCache; used by one thread at a time.
#ifndef EDGELLM_ENGINE_KV_CACHE_H_
#define EDGELLM_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <memory>

namespace edgellm::engine {

class KvCache {
 public:
  struct Storage;  // engine-internal: the per-layer tensors
  explicit KvCache(std::unique_ptr<Storage> storage);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Positions filled so far.
  int32_t length() const;
  // Positions it can hold.
  int32_t capacity() const;
  // Bytes held by the cache.
  uint64_t bytes() const;
  // Forgets every position past `length` (0 clears); no effect if already shorter.
  void Truncate(int32_t length);

  Storage& storage() { return *storage_; }

 private:
  std::unique_ptr<Storage> storage_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_CACHE_H_
