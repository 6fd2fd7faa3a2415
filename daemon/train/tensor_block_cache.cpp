#include "daemon/train/tensor_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace edgellm::train {
namespace {

// Tensors at least this large are cached; smaller ones go to malloc, which
// keeps them well.
constexpr size_t kLargeBlock = size_t{256} << 10;
constexpr size_t kPage = 4096;
constexpr size_t kAlignment = 64;  // AVX-512 loads

class TensorBlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const override {
    if (bytes == 0) return {nullptr, nullptr, &Release, c10::Device(c10::DeviceType::CPU)};
    void* data = bytes < kLargeBlock ? AllocateSmall(bytes) : AllocateLarge((bytes + kPage - 1) / kPage * kPage);
    return {data, data, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  static TensorBlockCache& Instance();

  TensorBlockCacheUsage Usage() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_bytes_, live_bytes_};
  }

 private:
  static void* AllocateSmall(size_t bytes) {
    void* data = nullptr;
    if (posix_memalign(&data, kAlignment, bytes) != 0) TORCH_CHECK(false, "out of memory allocating ", bytes, " bytes");
    return data;
  }

  void* AllocateLarge(size_t bytes) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::vector<void*>& free_blocks = free_[bytes];
      if (!free_blocks.empty()) {
        void* data = free_blocks.back();
        free_blocks.pop_back();
        cached_bytes_ -= bytes;
        live_bytes_ += bytes;
        live_[data] = bytes;
        return data;
      }
    }
    void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TORCH_CHECK(data != MAP_FAILED, "out of memory allocating ", bytes, " bytes");
    std::lock_guard<std::mutex> lock(mutex_);
    live_bytes_ += bytes;
    live_[data] = bytes;
    return data;
  }

  static void Release(void* data) {
    if (data == nullptr) return;
    TensorBlockCache& cache = Instance();
    {
      std::lock_guard<std::mutex> lock(cache.mutex_);
      auto it = cache.live_.find(data);
      if (it != cache.live_.end()) {
        const size_t bytes = it->second;
        cache.live_.erase(it);
        cache.live_bytes_ -= bytes;
        cache.cached_bytes_ += bytes;
        cache.free_[bytes].push_back(data);
        return;
      }
    }
    std::free(data);
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;  // by exact size
  mutable std::unordered_map<void*, size_t> live_;
  mutable size_t cached_bytes_ = 0;
  mutable size_t live_bytes_ = 0;
};

TensorBlockCache& TensorBlockCache::Instance() {
  static TensorBlockCache* cache = new TensorBlockCache();  // never destroyed: tensors may outlive statics
  return *cache;
}

}  // namespace

void UseTensorBlockCache() {
  static std::once_flag once;
  // Above the default allocator's priority (0), so it is the one ATen uses.
  std::call_once(once, [] { c10::SetCPUAllocator(&TensorBlockCache::Instance(), /*priority=*/1); });
}

TensorBlockCacheUsage TensorBlockCacheUsageNow() { return TensorBlockCache::Instance().Usage(); }

}  // namespace edgellm::train
