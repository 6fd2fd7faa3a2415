#include "daemon/engine/kv_block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/fp16.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/legacy_quants.h"

namespace edgellm::engine {
namespace {

constexpr KvShape kShape{.n_layer = 2, .n_head_kv = 2, .head_dim = 4};

std::shared_ptr<KvBlockPool> MakePool(int32_t block_count, bool prefix_caching = true) {
  auto pool = KvBlockPool::Create(kShape, {.block_size = 4, .block_count = block_count,
                                           .prefix_caching = prefix_caching});
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? *pool : nullptr;
}

// What a forward does to the cache, with a recognizable value in every
// position: its token id as head 0's first key in layer 0.
float* KeySlot(const KvCache& cache, int32_t position) {
  const int32_t size = cache.pool().block_size();
  return reinterpret_cast<float*>(cache.pool().LayerData(cache.block_table()[position / size], 0, false)) +
         (position % size) * kShape.head_dim;
}

void Fill(KvCache& cache, const std::vector<TokenId>& tokens) {
  ASSERT_TRUE(cache.Reserve(static_cast<int32_t>(tokens.size())).ok());
  for (size_t i = 0; i < tokens.size(); ++i) {
    *KeySlot(cache, cache.length() + static_cast<int32_t>(i)) = static_cast<float>(tokens[i]);
  }
  cache.Append(tokens);
}

float KeyAt(const KvCache& cache, int32_t position) { return *KeySlot(cache, position); }

TEST(KvBlockPool, SizesBlocksInWholePagesAndFitsThemInTheBudget) {
  const uint64_t block = KvBlockPool::BlockBytes(kShape, 4);
  EXPECT_EQ(block % 4096, 0u);
  EXPECT_GE(block, 2u * 2 * 4 * 8 * sizeof(float));
  EXPECT_EQ(KvBlockPool::BlocksInBudget(kShape, 4, 10 * block + 1), 10);
  EXPECT_EQ(KvBlockPool::Create(kShape, {.block_size = 4, .block_count = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KvBlockPool::Create({}, {.block_size = 4, .block_count = 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The VmFlags line of the mapping that holds `address`, from /proc/self/smaps.
std::string VmFlagsOfMappingAt(const void* address) {
  const auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    if (std::sscanf(line.c_str(), "%lx%c%lx", &begin, &dash, &end) == 3 && dash == '-') {
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST(KvBlockPool, ItsBlocksAreAskedForOnHugePages) {
  auto pool = MakePool(64);
  const std::string flags = VmFlagsOfMappingAt(pool->LayerData(0, 0, false));
  ASSERT_FALSE(flags.empty()) << "no mapping in /proc/self/smaps holds the pool";
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;  // MADV_HUGEPAGE
}

// Otherwise khugepaged could fill a trimmed block in again to make a 2 MiB
// page around a neighbour still held, and Trim's figure would be a wish.
TEST(KvBlockPool, TrimWithdrawsTheHugePageHintFromWhatItGivesBackUntilItIsHandedOutAgain) {
  auto pool = MakePool(64);
  auto held = pool->NewCache(16);
  Fill(*held, {1, 2, 3, 4});
  int32_t trimmed = -1;
  {
    auto gone = pool->NewCache(16);
    Fill(*gone, {5, 6, 7, 8});
    trimmed = gone->block_table()[0];
  }
  const int32_t kept = held->block_table()[0];
  ASSERT_EQ(pool->Trim(), pool->block_bytes());
  EXPECT_NE(VmFlagsOfMappingAt(pool->LayerData(trimmed, 0, false)).find(" nh"), std::string::npos);
  EXPECT_NE(VmFlagsOfMappingAt(pool->LayerData(kept, 0, false)).find(" hg"), std::string::npos);
  EXPECT_NE(VmFlagsOfMappingAt(pool->LayerData(63, 0, false)).find(" hg"), std::string::npos);  // never used
  auto again = pool->NewCache(16);
  Fill(*again, {9, 10, 11, 12});
  ASSERT_EQ(again->block_table()[0], trimmed);
  EXPECT_NE(VmFlagsOfMappingAt(pool->LayerData(trimmed, 0, false)).find(" hg"), std::string::npos);
}

TEST(KvBlockPool, AHalfPrecisionCacheHoldsTwiceThePositionsInABudgetAndRoundsEachValueOnce) {
  constexpr KvShape kFloats{.n_layer = 4, .n_head_kv = 8, .head_dim = 64};
  KvShape halves = kFloats;
  halves.type = KvType::kF16;
  EXPECT_EQ(KvBlockPool::BlockBytes(kFloats, 16), 2u * 4 * 16 * 8 * 64 * sizeof(float));
  EXPECT_EQ(KvBlockPool::BlockBytes(halves, 16), KvBlockPool::BlockBytes(kFloats, 16) / 2);
  const uint64_t budget = 64ull << 20;
  EXPECT_EQ(KvBlockPool::BlocksInBudget(halves, 16, budget), 2 * KvBlockPool::BlocksInBudget(kFloats, 16, budget));

  auto pool = KvBlockPool::Create(halves, {.block_size = 16, .block_count = 2});
  ASSERT_TRUE(pool.ok()) << pool.status();
  // Odd counts reach the kernels' tails; 65504 is the largest half, 1e-8 below its smallest.
  const std::vector<float> written = {1.0f, -2.5f, 0.1f, 65504.0f, 1e-8f, 3.14159f, -0.0f, 1000.7f, 0.333333f};
  uint8_t* keys = (*pool)->LayerData(1, 3, false);
  (*pool)->StoreValues(written.data(), static_cast<int64_t>(written.size()), keys);
  std::vector<float> read(written.size());
  (*pool)->LoadValues(keys, static_cast<int64_t>(read.size()), read.data());
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(read[i], Fp16ToFp32(Fp32ToFp16(written[i]))) << written[i];
    EXPECT_NEAR(read[i], written[i], std::abs(written[i]) / 1024 + 1e-7f) << written[i];
  }
  // Block 1's keys of layer 3 lie after layers 0..2 and their values: nothing else moved.
  EXPECT_EQ(keys, (*pool)->LayerData(1, 0, false) + 3 * 2 * 16 * 8 * 64 * 2);
  EXPECT_EQ(ParseKvType("f16").value(), KvType::kF16);
  EXPECT_EQ(ParseKvType("q4_0").status().code(), absl::StatusCode::kInvalidArgument);
}

// A cache of halves in blocks of a multiple of sixteen positions keeps each
// head's keys a dimension at a time (value j of position t at j · block_size
// + t) and its values a position at a time; each row reads back as the
// halves it was rounded to, and a row written touches no other position.
TEST(KvBlockPool, HalvesKeepKeysTransposedAndValuesInRows) {
  constexpr KvShape kHalves{.n_layer = 2, .n_head_kv = 3, .head_dim = 24, .type = KvType::kF16};
  for (const int32_t block_size : {16, 32}) {
    auto pool = KvBlockPool::Create(kHalves, {.block_size = block_size, .block_count = 2});
    ASSERT_TRUE(pool.ok()) << pool.status();
    ASSERT_TRUE((*pool)->keys_transposed());
    uint8_t* keys = (*pool)->HeadData(1, 1, 2, false);
    uint8_t* values = (*pool)->HeadData(1, 1, 2, true);
    EXPECT_EQ(keys, (*pool)->LayerData(1, 1, false) + 2 * block_size * 24 * 2);
    std::memset(keys, 0xff, static_cast<size_t>(block_size) * 24 * 2);
    std::vector<float> row(24);
    for (size_t j = 0; j < row.size(); ++j) row[j] = 0.1f * static_cast<float>(j) - 1.0f;
    const int32_t slot = block_size - 3;
    (*pool)->StoreHeadRow(row.data(), keys, slot, false);
    (*pool)->StoreHeadRow(row.data(), values, slot, true);
    const auto* key_halves = reinterpret_cast<const uint16_t*>(keys);
    const auto* value_halves = reinterpret_cast<const uint16_t*>(values);
    for (int32_t j = 0; j < 24; ++j) {
      EXPECT_EQ(key_halves[j * block_size + slot], Fp32ToFp16(row[j])) << j;
      EXPECT_EQ(key_halves[j * block_size + slot - 1], 0xffff) << "the position before, value " << j;
      EXPECT_EQ(value_halves[slot * 24 + j], Fp32ToFp16(row[j])) << j;
    }
    for (const bool are_values : {false, true}) {
      std::vector<float> read(2 * 24);
      (*pool)->LoadHeadRows(are_values ? values : keys, slot, 2, are_values, read.data());
      for (size_t j = 0; j < row.size(); ++j) EXPECT_EQ(read[j], Fp16ToFp32(Fp32ToFp16(row[j]))) << j;
    }
  }
  // Floats, and blocks of other sizes, keep their keys in rows as well.
  EXPECT_FALSE((*KvBlockPool::Create(kHalves, {.block_size = 8, .block_count = 1}))->keys_transposed());
  KvShape floats = kHalves;
  floats.type = KvType::kF32;
  EXPECT_FALSE((*KvBlockPool::Create(floats, {.block_size = 16, .block_count = 1}))->keys_transposed());
}

TEST(KvBlockPool, AQ8_0CacheStoresEachRunOf32AsGgmlsBlocksInUnder53PercentOfHalves) {
  constexpr KvShape kHalves{.n_layer = 4, .n_head_kv = 8, .head_dim = 64, .type = KvType::kF16};
  KvShape q8 = kHalves;
  q8.type = KvType::kQ8_0;
  EXPECT_EQ(ParseKvType("q8_0").value(), KvType::kQ8_0);
  EXPECT_EQ(KvTypeName(KvType::kQ8_0), "q8_0");
  EXPECT_EQ(q8.head_row_bytes(), 2 * 34);
  EXPECT_EQ(KvBlockPool::BlockBytes(q8, 16), 2u * 4 * 16 * 8 * 68);
  const uint64_t budget = 64ull << 20;
  EXPECT_GT(KvBlockPool::BlocksInBudget(q8, 16, budget), KvBlockPool::BlocksInBudget(kHalves, 16, budget) * 18 / 10);

  auto pool = KvBlockPool::Create(q8, {.block_size = 16, .block_count = 2});
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::vector<float> written(128);
  for (size_t i = 0; i < written.size(); ++i) written[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + i % 7);
  written[5] = 0.0f;
  uint8_t* values = (*pool)->LayerData(1, 2, true) + 3 * q8.head_row_bytes();
  (*pool)->StoreValues(written.data(), static_cast<int64_t>(written.size()), values);
  std::vector<uint8_t> expected(written.size() / 32 * 34);
  QuantizeQ8_0(written.data(), expected.data(), written.size() / 32);
  EXPECT_EQ(std::vector<uint8_t>(values, values + expected.size()), expected);
  std::vector<float> read(written.size());
  (*pool)->LoadValues(values, static_cast<int64_t>(read.size()), read.data());
  for (size_t i = 0; i < written.size(); ++i) {
    // Within half a step of its block (its largest magnitude / 127), plus 127
    // times the step's own rounding to a half (2^-11 of it).
    float largest = 0.0f;
    for (size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) largest = std::max(largest, std::abs(written[j]));
    EXPECT_NEAR(read[i], written[i], largest / 127 * 0.57f) << i;
  }
  // Heads of a length that is no whole number of Q8_0 blocks are refused, naming the alternative.
  KvShape odd = q8;
  odd.head_dim = 48;
  const absl::Status refused = KvBlockPool::Create(odd, {.block_size = 16, .block_count = 2}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("multiple of 32"), std::string_view::npos) << refused;
}

TEST(KvBlockPool, CachesTakeBlocksAsTheyGrowAndGiveThemBack) {
  auto pool = MakePool(4);
  {
    auto cache = pool->NewCache(16);
    EXPECT_EQ(cache->BlocksToGrow(5), 2);
    Fill(*cache, {1, 2, 3, 4, 5});
    EXPECT_EQ(cache->block_table().size(), 2u);
    EXPECT_EQ(pool->used_blocks(), 2);
    EXPECT_EQ(pool->available_blocks(), 2);
    EXPECT_EQ(KeyAt(*cache, 4), 5.0f);
    cache->Truncate(3);
    EXPECT_EQ(cache->block_table().size(), 1u);
    EXPECT_EQ(cache->tokens(), (std::vector<TokenId>{1, 2, 3}));
  }
  EXPECT_EQ(pool->used_blocks(), 0);
  EXPECT_EQ(pool->cached_blocks(), 1);  // the full block {1, 2, 3, 4} stays for reuse
}

TEST(KvBlockPool, RefusesToGrowPastCapacityOrThePool) {
  auto pool = MakePool(2);
  auto cache = pool->NewCache(12);
  EXPECT_EQ(cache->Reserve(13).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(cache->Reserve(9).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(cache->block_table().empty());
  EXPECT_TRUE(cache->Reserve(8).ok());
}

TEST(KvBlockPool, ANewCacheStartsWithTheBlocksOfItsLongestKnownPrefix) {
  auto pool = MakePool(8);
  auto a = pool->NewCache(16);
  Fill(*a, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto b = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8, 10, 11}, 16, 9);
  EXPECT_EQ(b->length(), 8);
  EXPECT_EQ(b->block_table(), (std::vector<int32_t>{a->block_table()[0], a->block_table()[1]}));
  EXPECT_EQ(pool->used_blocks(), 3);  // shared blocks count once
  // A prompt that differs inside the first block shares the positions before
  // the difference, and nothing after it.
  auto c = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 99, 5, 6, 7, 8, 9}, 16, 8);
  EXPECT_EQ(c->length(), 3);
  EXPECT_EQ(c->block_table(), (std::vector<int32_t>{a->block_table()[0]}));
  // Reuse is capped, here at 6 positions: the second block is shared but only partly used.
  auto d = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8}, 16, 6);
  EXPECT_EQ(d->length(), 6);
  EXPECT_EQ(d->tokens(), (std::vector<TokenId>{1, 2, 3, 4, 5, 6}));
}

// Caches of another prefix space (another LoRA adapter, whose keys and
// values differ for the same tokens) never share blocks.
TEST(KvBlockPool, BlocksAreSharedOnlyWithinAPrefixSpace) {
  auto pool = MakePool(8);
  auto base = pool->NewCache(16);
  Fill(*base, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto adapted = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8, 9}, 16, 8, 7);
  EXPECT_EQ(adapted->length(), 0);
  Fill(*adapted, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_NE(adapted->block_table()[0], base->block_table()[0]) << "identical blocks of two spaces stay apart";
  auto same_space = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8, 10}, 16, 8, 7);
  EXPECT_EQ(same_space->length(), 8);
  EXPECT_EQ(same_space->block_table()[0], adapted->block_table()[0]);
  auto base_again = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8, 10}, 16, 8);
  EXPECT_EQ(base_again->block_table()[0], base->block_table()[0]);
}

TEST(KvBlockPool, TheLastPartlyFilledBlockOfAFinishedCacheIsReusedToo) {
  auto pool = MakePool(8);
  { auto a = pool->NewCache(16); Fill(*a, {1, 2, 3, 4, 5, 6}); }
  EXPECT_EQ(pool->cached_blocks(), 2);
  auto b = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7}, 16, 6);
  EXPECT_EQ(b->length(), 6);
  EXPECT_EQ(KeyAt(*b, 5), 6.0f);
  Fill(*b, {7});  // held by b alone: written in place
  EXPECT_EQ(KeyAt(*b, 6), 7.0f);
  EXPECT_EQ(pool->used_blocks(), 2);
  auto c = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 9}, 16, 5);
  EXPECT_EQ(c->length(), 4);  // b took the tail block over: it no longer holds {5, 6} alone
}

TEST(KvBlockPool, ASharedBlockIsCopiedBeforeItIsWritten) {
  auto pool = MakePool(8);
  auto a = pool->NewCache(16);
  Fill(*a, {1, 2, 3, 4, 5, 6, 7, 8});
  auto b = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8}, 16, 6);
  EXPECT_EQ(b->BlocksToGrow(7), 1);  // the copy
  Fill(*b, {50});
  EXPECT_NE(b->block_table()[1], a->block_table()[1]);
  EXPECT_EQ(b->block_table()[0], a->block_table()[0]);
  EXPECT_EQ(KeyAt(*b, 5), 6.0f);   // copied
  EXPECT_EQ(KeyAt(*b, 6), 50.0f);  // written into the copy
  EXPECT_EQ(KeyAt(*a, 6), 7.0f);   // the original untouched
}

TEST(KvBlockPool, ABlockHeldByOneCacheIsWrittenInPlaceAndForgotten) {
  auto pool = MakePool(8);
  auto a = pool->NewCache(16);
  Fill(*a, {1, 2, 3, 4});
  const int32_t block = a->block_table()[0];
  a->Truncate(2);
  Fill(*a, {9});
  EXPECT_EQ(a->block_table()[0], block);
  // Its old content is no longer offered.
  auto b = pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5}, 16, 4);
  EXPECT_EQ(b->length(), 0);
}

TEST(KvBlockPool, IdenticalBlocksComputedTwiceAreMergedIntoOne) {
  auto pool = MakePool(8);
  auto a = pool->NewCache(16), b = pool->NewCache(16);
  Fill(*a, {1, 2});
  Fill(*b, {1, 2});
  EXPECT_EQ(pool->used_blocks(), 2);
  Fill(*a, {3, 4});
  Fill(*b, {3, 4});
  EXPECT_EQ(b->block_table()[0], a->block_table()[0]);
  EXPECT_EQ(pool->used_blocks(), 1);
}

TEST(KvBlockPool, CachedBlocksAreEvictedLeastRecentlyReleasedFirst) {
  auto pool = MakePool(3);
  { auto a = pool->NewCache(16); Fill(*a, {1, 2, 3, 4}); }
  { auto b = pool->NewCache(16); Fill(*b, {5, 6, 7, 8}); }
  EXPECT_EQ(pool->cached_blocks(), 2);
  EXPECT_EQ(pool->available_blocks(), 3);
  auto c = pool->NewCache(16);
  Fill(*c, {9, 9, 9, 9, 9});  // two blocks: the free one, then the oldest cached
  EXPECT_EQ(pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 0}, 16, 4)->length(), 0);
  EXPECT_EQ(pool->NewCacheWithPrefix(std::vector<TokenId>{5, 6, 7, 8, 0}, 16, 4)->length(), 4);
}

TEST(KvBlockPool, TrimForgetsCachedBlocksAndKeepsHeldOnes) {
  auto pool = MakePool(4);
  auto held = pool->NewCache(16);
  Fill(*held, {1, 2, 3, 4});
  { auto gone = pool->NewCache(16); Fill(*gone, {5, 6, 7, 8}); }
  EXPECT_EQ(pool->Trim(), pool->block_bytes());  // the one block written and let go
  EXPECT_EQ(pool->Trim(), 0u);
  EXPECT_EQ(pool->cached_blocks(), 0);
  EXPECT_EQ(pool->available_blocks(), 3);
  EXPECT_EQ(KeyAt(*held, 3), 4.0f);
  EXPECT_EQ(pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 0}, 16, 4)->length(), 4);
}

TEST(KvBlockPool, WithoutPrefixCachingNothingIsShared) {
  auto pool = MakePool(4, /*prefix_caching=*/false);
  auto a = pool->NewCache(16);
  Fill(*a, {1, 2, 3, 4, 5});
  EXPECT_EQ(pool->NewCacheWithPrefix(std::vector<TokenId>{1, 2, 3, 4, 5}, 16, 4)->length(), 0);
  a.reset();
  EXPECT_EQ(pool->cached_blocks(), 0);
}

}  // namespace
}  // namespace edgellm::engine
