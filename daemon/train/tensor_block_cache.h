// train/tensor_block_cache.h — an ATen CPU allocator that keeps the memory of
// large tensors for the next tensor of the same size.
//
// A training step allocates the same sequence of activation and gradient
// tensors every time. Through malloc, smaller requests split the holes the
// freed activations leave, so the heap grew to twice the live tensors (74 MB
// resident per layer of smol-135m for 33 MB in use); through mmap, every
// block is faulted in again each step (a fifth of a step's time). Kept by
// exact size, a step reuses the blocks of the one before, and the resident
// memory is the live tensors plus one of each transient size.
// Engine-internal to train/: includes c10.
#ifndef EDGELLM_TRAIN_TENSOR_BLOCK_CACHE_H_
#define EDGELLM_TRAIN_TENSOR_BLOCK_CACHE_H_

#include <cstddef>

namespace edgellm::train {

// Makes the cache ATen's CPU allocator for the rest of the process (once;
// later calls do nothing). Tensors already allocated keep their allocator.
void UseTensorBlockCache();

// Bytes the cache holds for reuse, and in live tensors (both: large blocks only).
struct TensorBlockCacheUsage {
  size_t cached_bytes = 0;
  size_t live_bytes = 0;
};
TensorBlockCacheUsage TensorBlockCacheUsageNow();

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_TENSOR_BLOCK_CACHE_H_
