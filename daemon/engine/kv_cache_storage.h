// engine/kv_cache_storage.h — engine-internal layout of a KvCache.
#ifndef EDGELLM_ENGINE_KV_CACHE_STORAGE_H_
#define EDGELLM_ENGINE_KV_CACHE_STORAGE_H_

#include <ATen/core/Tensor.h>

#include <vector>

#include "daemon/engine/kv_cache.h"

namespace edgellm::engine {

struct KvCache::Storage {
  std::vector<at::Tensor> keys;    // per layer: [n_head_kv, capacity, head_dim]
  std::vector<at::Tensor> values;  // per layer: [n_head_kv, capacity, head_dim]
  int32_t length = 0;
  int32_t capacity = 0;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_CACHE_STORAGE_H_
