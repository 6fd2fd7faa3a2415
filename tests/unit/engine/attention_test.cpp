#include "daemon/engine/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "daemon/engine/kv_block_pool.h"

namespace edgellm::engine {
namespace {

constexpr int32_t kHeads = 9, kKvHeads = 3, kHeadDim = 32, kBlockSize = 16;

LlamaConfig ThreeKvHeads() {
  LlamaConfig config;
  config.n_layer = 1;
  config.n_head = kHeads;
  config.n_head_kv = kKvHeads;
  config.head_dim = kHeadDim;
  config.attention_scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  return config;
}

// A cache whose `length` positions hold random keys and values, with room
// reserved for one more (the decode row), whose keys and values are written too.
class AttentionTest : public ::testing::Test {
 protected:
  // With an F16 or Q8_0 cache, keys_ and values_ keep what it holds: each value rounded once.
  void Fill(int32_t length, KvType type = KvType::kF32, int32_t block_size = kBlockSize) {
    auto pool = KvBlockPool::Create({1, kKvHeads, kHeadDim, type}, {.block_size = block_size, .block_count = 64,
                                                                    .prefix_caching = false});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *pool;
    cache_ = pool_->NewCache(length + 1);
    ASSERT_TRUE(cache_->Reserve(length + 1).ok());
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    keys_.assign(static_cast<size_t>((length + 1) * kKvHeads * kHeadDim), 0.0f);
    values_ = keys_;
    for (int32_t p = 0; p <= length; ++p) {
      const int32_t block = cache_->block_table()[p / block_size], slot = p % block_size;
      for (int32_t h = 0; h < kKvHeads; ++h) {
        float* keys = keys_.data() + (static_cast<size_t>(p) * kKvHeads + h) * kHeadDim;
        float* values = values_.data() + (static_cast<size_t>(p) * kKvHeads + h) * kHeadDim;
        for (int32_t j = 0; j < kHeadDim; ++j) {
          keys[j] = 2.0f * normal(rng);
          values[j] = normal(rng);
        }
        pool_->StoreHeadRow(keys, pool_->HeadData(block, 0, h, false), slot, false);
        pool_->StoreHeadRow(values, pool_->HeadData(block, 0, h, true), slot, true);
        pool_->LoadHeadRows(pool_->HeadData(block, 0, h, false), slot, 1, false, keys);
        pool_->LoadHeadRows(pool_->HeadData(block, 0, h, true), slot, 1, true, values);
      }
    }
    cache_->Append(std::vector<TokenId>(static_cast<size_t>(length), 1));
    query_.resize(kHeads * kHeadDim);
    for (float& v : query_) v = normal(rng);
  }
  // Query head `head`'s output at position `pos`, seeing [first, pos], in double.
  std::vector<double> Reference(int32_t head, int32_t pos, int32_t first) const {
    const int32_t kv = head / (kHeads / kKvHeads);
    std::vector<double> scores;
    double max = -1e300;
    for (int32_t p = first; p <= pos; ++p) {
      double s = 0;
      for (int32_t j = 0; j < kHeadDim; ++j) {
        s += static_cast<double>(query_[head * kHeadDim + j]) * keys_[(static_cast<size_t>(p) * kKvHeads + kv) * kHeadDim + j];
      }
      scores.push_back(s / std::sqrt(static_cast<double>(kHeadDim)));
      max = std::max(max, scores.back());
    }
    std::vector<double> out(kHeadDim, 0.0);
    double total = 0;
    for (int32_t p = first; p <= pos; ++p) {
      const double w = std::exp(scores[p - first] - max);
      total += w;
      for (int32_t j = 0; j < kHeadDim; ++j) out[j] += w * values_[(static_cast<size_t>(p) * kKvHeads + kv) * kHeadDim + j];
    }
    for (double& v : out) v /= total;
    return out;
  }
  // Every KV head's attention of the decode row in `parts` parts, merged.
  std::vector<float> Attend(int64_t parts, int32_t window) {
    const LlamaConfig config = ThreeKvHeads();
    const CpuSequence seq{0, 1, cache_.get(), false};
    const int64_t scratch_size = AttentionScratch(config, 1, *pool_);
    std::vector<float> scratch(static_cast<size_t>(scratch_size * parts), std::nanf(""));
    std::vector<float> out(kHeads * kHeadDim, std::nanf(""));
    for (int64_t kv = 0; kv < kKvHeads; ++kv) {
      for (int64_t part = 0; part < parts; ++part) {
        AttendOneKvHead(config, seq, cache_->length(), 0, kv, window, query_.data(), scratch.data() + part * scratch_size,
                        out.data(), {part, parts});
      }
      if (parts > 1) MergeAttentionParts(config, seq, kv, scratch.data(), scratch_size, parts, out.data());
    }
    return out;
  }

  std::shared_ptr<KvBlockPool> pool_;
  std::unique_ptr<KvCache> cache_;
  std::vector<float> keys_, values_, query_;
};

TEST_F(AttentionTest, ADecodeRowMatchesTheExactSoftmaxInAnyNumberOfParts) {
  Fill(300);  // 19 blocks, the last one partly filled
  // 25 parts leave some without a block: they must add nothing.
  for (int64_t parts : {1, 2, 3, 5, 25}) {
    const std::vector<float> out = Attend(parts, 0);
    for (int32_t head = 0; head < kHeads; ++head) {
      const std::vector<double> expected = Reference(head, 300, 0);
      for (int32_t j = 0; j < kHeadDim; ++j) {
        EXPECT_NEAR(out[head * kHeadDim + j], expected[j], 2e-5) << parts << " parts, head " << head << ", " << j;
      }
    }
  }
}

// Halves in blocks of sixteen and thirty-two positions lie with their keys
// transposed, in blocks of eight a row at a time; Q8_0 always a row at a time.
TEST_F(AttentionTest, ARoundedCacheIsReadAsTheValuesItHolds) {
  for (const auto& [type, block_size] : {std::pair{KvType::kF16, 16}, std::pair{KvType::kF16, 32},
                                         std::pair{KvType::kF16, 8}, std::pair{KvType::kQ8_0, 16}}) {
    Fill(300, type, block_size);
    EXPECT_EQ(pool_->keys_transposed(), type == KvType::kF16 && block_size % 16 == 0);
    for (int64_t parts : {1, 2, 3}) {
      const std::vector<float> out = Attend(parts, 0);
      for (int32_t head = 0; head < kHeads; ++head) {
        const std::vector<double> expected = Reference(head, 300, 0);
        for (int32_t j = 0; j < kHeadDim; ++j) {
          EXPECT_NEAR(out[head * kHeadDim + j], expected[j], 2e-5) << KvTypeName(type) << " in blocks of "
                                                                   << block_size << ", " << parts << " parts, head "
                                                                   << head << ", " << j;
        }
      }
    }
  }
}

TEST_F(AttentionTest, PartsRespectASlidingWindow) {
  Fill(300);
  constexpr int32_t kWindow = 50;  // sees [251, 300]: blocks 15 to 18, the first partly
  for (int64_t parts : {1, 2, 3, 4, 7}) {
    const std::vector<float> out = Attend(parts, kWindow);
    for (int32_t head = 0; head < kHeads; ++head) {
      const std::vector<double> expected = Reference(head, 300, 300 - kWindow + 1);
      for (int32_t j = 0; j < kHeadDim; ++j) {
        EXPECT_NEAR(out[head * kHeadDim + j], expected[j], 2e-5) << parts << " parts, head " << head << ", " << j;
      }
    }
  }
}

TEST(AttentionParts, SplitsOnlyWhatTheThreadsCannotShareEvenlyAndOnlyWhenItPays) {
  constexpr int64_t kBig = 1 << 20, kMin = 1 << 16;
  EXPECT_EQ(AttentionParts(3, 2, kBig, kMin), 2);   // smol-135m's three KV heads on two threads
  EXPECT_EQ(AttentionParts(1, 2, kBig, kMin), 2);
  EXPECT_EQ(AttentionParts(3, 4, kBig, kMin), 4);
  EXPECT_EQ(AttentionParts(6, 4, kBig, kMin), 2);
  EXPECT_EQ(AttentionParts(4, 2, kBig, kMin), 1);   // already even
  EXPECT_EQ(AttentionParts(48, 2, kBig, kMin), 1);  // sixteen sequences
  EXPECT_EQ(AttentionParts(3, 1, kBig, kMin), 1);   // one thread
  EXPECT_EQ(AttentionParts(3, 2, kMin, kMin), 1);   // a part would be too small to hand over
  EXPECT_EQ(AttentionParts(3, 2, 2 * kMin, kMin), 2);
}

}  // namespace
}  // namespace edgellm::engine
