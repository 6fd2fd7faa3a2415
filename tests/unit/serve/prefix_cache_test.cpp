#include "daemon/serve/prefix_cache.h"

#include <gtest/gtest.h>

#include "daemon/engine/llama_model.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::serve {
namespace {

using engine::TokenId;

class PrefixCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = engine::LlamaModel::Load(
        edgellm::testing::SyntheticModel("test-spm", engine::GgmlType::kF32), engine::ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  // A cache that has run `tokens`.
  std::unique_ptr<engine::KvCache> CacheOf(const std::vector<TokenId>& tokens) {
    auto cache = model_->NewCache(64);
    std::vector<float> logits;
    EXPECT_TRUE(model_->Forward(tokens, cache.get(), false, &logits).ok());
    return cache;
  }
  std::unique_ptr<engine::LlamaModel> model_;
};

TEST_F(PrefixCacheTest, TakesTheLongestSharedPrefixTruncatedToIt) {
  PrefixCache cache(4);
  cache.Put({1, 2, 3, 4}, CacheOf({1, 2, 3, 4}));
  cache.Put({1, 2, 9}, CacheOf({1, 2, 9}));
  PrefixCache::Hit hit = cache.Take({1, 2, 3, 7, 8});
  ASSERT_NE(hit.cache, nullptr);
  EXPECT_EQ(hit.reused, 3);
  EXPECT_EQ(hit.cache->length(), 3);
  EXPECT_EQ(cache.size(), 1u);  // moved out, not shared
}

TEST_F(PrefixCacheTest, TheLastPromptTokenAlwaysRuns) {
  PrefixCache cache(4);
  cache.Put({1, 2, 3}, CacheOf({1, 2, 3}));
  PrefixCache::Hit hit = cache.Take({1, 2, 3});
  ASSERT_NE(hit.cache, nullptr);
  EXPECT_EQ(hit.reused, 2);
  EXPECT_EQ(hit.cache->length(), 2);
}

TEST_F(PrefixCacheTest, MissesWhenNothingIsShared) {
  PrefixCache cache(4);
  cache.Put({5, 6}, CacheOf({5, 6}));
  EXPECT_EQ(cache.Take({1, 2}).cache, nullptr);
  EXPECT_EQ(cache.Take({5}).cache, nullptr);  // a one-token prompt reuses nothing
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(PrefixCacheTest, EvictsTheLeastRecentlyUsed) {
  PrefixCache cache(2);
  cache.Put({1, 1}, CacheOf({1, 1}));
  cache.Put({2, 2}, CacheOf({2, 2}));
  cache.Put({3, 3}, CacheOf({3, 3}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Take({1, 1, 5}).cache, nullptr);
  EXPECT_NE(cache.Take({3, 3, 5}).cache, nullptr);
  PrefixCache off(0);
  off.Put({1, 1}, CacheOf({1, 1}));
  EXPECT_EQ(off.size(), 0u);
}

}  // namespace
}  // namespace edgellm::serve
