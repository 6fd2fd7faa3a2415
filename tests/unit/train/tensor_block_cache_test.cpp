#include "daemon/train/tensor_block_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace edgellm::train {
namespace {

TEST(TensorBlockCache, AFreedLargeBlockServesTheNextTensorOfItsSize) {
  UseTensorBlockCache();
  const int64_t floats = 1 << 20;  // 4 MiB
  void* first = nullptr;
  {
    at::Tensor t = at::empty({floats});
    first = t.data_ptr();
    const TensorBlockCacheUsage usage = TensorBlockCacheUsageNow();
    EXPECT_GE(usage.live_bytes, static_cast<size_t>(floats) * 4);
  }
  const size_t cached = TensorBlockCacheUsageNow().cached_bytes;
  EXPECT_GE(cached, static_cast<size_t>(floats) * 4);
  at::Tensor other_size = at::empty({floats + 4096});
  EXPECT_NE(other_size.data_ptr(), first) << "a block is only reused at its own size";
  at::Tensor again = at::ones({floats});
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(TensorBlockCacheUsageNow().cached_bytes, cached - static_cast<size_t>(floats) * 4);
  EXPECT_EQ(again.sum().item<double>(), static_cast<double>(floats)) << "the reused block holds the new tensor";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(at::empty({floats}).data_ptr()) % 64, 0u);
}

TEST(TensorBlockCache, SmallTensorsAreAlignedAndNotCached) {
  UseTensorBlockCache();
  const size_t cached = TensorBlockCacheUsageNow().cached_bytes;
  for (int i = 0; i < 100; ++i) {
    at::Tensor t = at::full({1000 + i}, 2.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64, 0u);
    EXPECT_EQ(t.sum().item<double>(), 2.0 * (1000 + i));
  }
  EXPECT_EQ(TensorBlockCacheUsageNow().cached_bytes, cached);
  EXPECT_EQ(at::empty({0}).numel(), 0);
}

}  // namespace
}  // namespace edgellm::train
