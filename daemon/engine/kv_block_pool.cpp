#include "daemon/engine/kv_block_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fp16.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/legacy_quants.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

}  // namespace

std::string_view KvTypeName(KvType type) {
  switch (type) {
    case KvType::kF32: return "f32";
    case KvType::kF16: return "f16";
    case KvType::kQ8_0: return "q8_0";
  }
  return "?";
}

absl::StatusOr<KvType> ParseKvType(std::string_view name) {
  for (KvType type : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    if (name == KvTypeName(type)) return type;
  }
  return absl::InvalidArgumentError(edgellm::StrCat("KV cache type \"", name, "\" is not f32, f16 or q8_0"));
}

int64_t KvShape::head_row_bytes() const {
  switch (type) {
    case KvType::kF32: return 4 * static_cast<int64_t>(head_dim);
    case KvType::kF16: return 2 * static_cast<int64_t>(head_dim);
    case KvType::kQ8_0: return head_dim / static_cast<int64_t>(kLegacyBlock) * static_cast<int64_t>(kQ8_0BlockBytes);
  }
  return 0;
}

uint64_t KvBlockPool::BlockBytes(KvShape shape, int32_t block_size) {
  const uint64_t bytes = 2ull * shape.n_layer * block_size * shape.n_head_kv * shape.head_row_bytes();
  const uint64_t page = PageSize();
  return (bytes + page - 1) / page * page;
}

int32_t KvBlockPool::BlocksInBudget(KvShape shape, int32_t block_size, uint64_t budget_bytes) {
  const uint64_t block = BlockBytes(shape, block_size);
  return block == 0 ? 0 : static_cast<int32_t>(std::min<uint64_t>(budget_bytes / block, 1u << 30));
}

absl::Status CheckKvShape(const KvShape& shape) {
  if (shape.n_layer <= 0 || shape.n_head_kv <= 0 || shape.head_dim <= 0) {
    return absl::InvalidArgumentError("kv pool: the model shape has an empty dimension");
  }
  if (shape.type == KvType::kQ8_0 && shape.head_dim % static_cast<int32_t>(kLegacyBlock) != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("kv pool: a q8_0 cache needs heads of a multiple of ",
                                                      kLegacyBlock, " values; this model's have ", shape.head_dim,
                                                      " (use kv_type f16)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<KvBlockPool>> KvBlockPool::Create(KvShape shape, KvPoolOptions options) {
  EDGELLM_RETURN_IF_ERROR(CheckKvShape(shape));
  if (options.block_size <= 0 || options.block_size > 1024) {
    return absl::InvalidArgumentError(edgellm::StrCat("kv pool: block size ", options.block_size,
                                                      " is outside 1..1024"));
  }
  if (options.block_count <= 0) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("kv pool: the budget holds no block (one takes ", BlockBytes(shape, options.block_size),
                        " bytes)"));
  }
  const uint64_t block_bytes = BlockBytes(shape, options.block_size);
  void* base = ::mmap(nullptr, block_bytes * static_cast<uint64_t>(options.block_count), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(edgellm::StrCat("kv pool: cannot map ", options.block_count, " blocks of ",
                                                        block_bytes, " bytes: ", std::strerror(errno)));
  }
  // A batch of decode steps reads a few KiB of each sequence's blocks per
  // layer and head, a new 4 KiB page almost every time: on 2 MiB pages the
  // TLB holds them (sixteen smol-135m sequences decoding together +7.5%). A
  // hint: the kernel may give 4 KiB pages instead. Trim withdraws it from the
  // blocks it gives back, or khugepaged could fill their 2 MiB range in again
  // around a neighbouring block still held (max_ptes_none allows it by default).
  ::madvise(base, block_bytes * static_cast<uint64_t>(options.block_count), MADV_HUGEPAGE);
  return std::shared_ptr<KvBlockPool>(new KvBlockPool(shape, options, block_bytes, static_cast<uint8_t*>(base)));
}

KvBlockPool::KvBlockPool(KvShape shape, KvPoolOptions options, uint64_t block_bytes, uint8_t* base)
    : shape_(shape),
      options_(options),
      block_bytes_(block_bytes),
      base_(base),
      layer_bytes_(static_cast<int64_t>(options.block_size) * shape.n_head_kv * shape.head_row_bytes()),
      head_bytes_(static_cast<int64_t>(options.block_size) * shape.head_row_bytes()),
      keys_transposed_(shape.type == KvType::kF16 && options.block_size % kernels::kTransposedKeyRun == 0),
      blocks_(options.block_count) {
  free_.reserve(options.block_count);
  // Handed out from the back: low ids first.
  for (int32_t b = options.block_count - 1; b >= 0; --b) free_.push_back(b);
}

KvBlockPool::~KvBlockPool() { ::munmap(base_, block_bytes_ * static_cast<uint64_t>(options_.block_count)); }

std::unique_ptr<KvCache> KvBlockPool::NewCache(int32_t capacity, uint64_t prefix_space) {
  return std::make_unique<KvCache>(shared_from_this(), capacity, prefix_space);
}

std::unique_ptr<KvCache> KvBlockPool::NewCacheWithPrefix(absl::Span<const TokenId> tokens, int32_t capacity,
                                                         int32_t max_reuse, uint64_t prefix_space) {
  std::unique_ptr<KvCache> cache = NewCache(capacity, prefix_space);
  if (!options_.prefix_caching) return cache;
  const int32_t size = block_size();
  max_reuse = std::min({max_reuse, capacity, static_cast<int32_t>(tokens.size())});
  KvBlockParent parent = KeyOf(-1, prefix_space);
  int32_t matched = 0;  // positions covered by the blocks found
  // Whole blocks first, by their exact content.
  while (matched < max_reuse && matched + size <= static_cast<int32_t>(tokens.size())) {
    const int32_t block = index_.Find(parent, tokens.subspan(matched, size));
    if (block < 0) break;
    Retain(block);
    cache->block_table_.push_back(block);
    parent = ParentOf(block);
    matched += size;
  }
  // Then the block after them that shares the most leading tokens, if any.
  if (matched < max_reuse) {
    const size_t rest = std::min(static_cast<size_t>(size), tokens.size() - static_cast<size_t>(matched));
    const KvPrefixIndex::Match partial = index_.LongestMatch(parent, tokens.subspan(matched, rest));
    if (partial.length > 0) {
      Retain(partial.block);
      cache->block_table_.push_back(partial.block);
      matched += partial.length;
    }
  }
  const int32_t reused = std::min(matched, max_reuse);
  cache->tokens_.assign(tokens.begin(), tokens.begin() + reused);
  cache->Truncate(reused);  // gives back a block wholly past max_reuse
  return cache;
}

KvBlockParent KvBlockPool::ParentOf(int32_t block) const { return {block, blocks_[block].generation}; }

KvBlockParent KvBlockPool::KeyOf(int32_t parent, uint64_t prefix_space) const {
  return parent < 0 ? KvBlockParent{-1, prefix_space} : ParentOf(parent);
}

absl::StatusOr<int32_t> KvBlockPool::Allocate() {
  int32_t block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    block = lru_.front();
    lru_.pop_front();
    index_.Erase(block);
  } else {
    return absl::ResourceExhaustedError(
        edgellm::StrCat("kv pool: all ", options_.block_count, " blocks are in use"));
  }
  BlockState& state = blocks_[block];
  if (state.on_small_pages) {
    ::madvise(base_ + block * block_bytes_, block_bytes_, MADV_HUGEPAGE);
    state.on_small_pages = false;
  }
  ++state.generation;
  state.committed = true;
  state.holders = 1;
  ++used_;
  return block;
}

void KvBlockPool::Retain(int32_t block) {
  BlockState& state = blocks_[block];
  if (state.holders++ == 0) {
    lru_.erase(state.in_lru);
    ++used_;
  }
}

void KvBlockPool::Release(int32_t block) {
  BlockState& state = blocks_[block];
  if (--state.holders > 0) return;
  --used_;
  if (index_.Contains(block)) {
    state.in_lru = lru_.insert(lru_.end(), block);
  } else {
    free_.push_back(block);
  }
}

int32_t KvBlockPool::Register(int32_t block, int32_t parent, absl::Span<const TokenId> tokens,
                              uint64_t prefix_space) {
  if (index_.Contains(block)) return block;
  const KvBlockParent key = KeyOf(parent, prefix_space);
  const int32_t existing = index_.Find(key, tokens);
  if (existing < 0) {
    index_.Insert(block, key, tokens);
    return block;
  }
  // Another sequence computed the same block: share it and free this copy.
  Retain(existing);
  Release(block);
  return existing;
}

void KvBlockPool::RegisterTail(int32_t block, int32_t parent, absl::Span<const TokenId> tokens,
                               uint64_t prefix_space) {
  if (index_.Contains(block)) return;
  const KvBlockParent key = KeyOf(parent, prefix_space);
  if (index_.Find(key, tokens) >= 0) return;
  index_.Insert(block, key, tokens);
}

void KvBlockPool::CopyBlock(int32_t from, int32_t to) {
  std::memcpy(base_ + to * block_bytes_, base_ + from * block_bytes_, block_bytes_);
}

uint64_t KvBlockPool::Trim() {
  for (int32_t block : lru_) {
    index_.Erase(block);
    free_.push_back(block);
  }
  lru_.clear();
  uint64_t released = 0;
  for (int32_t block : free_) {
    if (!blocks_[block].committed) continue;
    uint8_t* const pages = base_ + block * block_bytes_;
    ::madvise(pages, block_bytes_, MADV_NOHUGEPAGE);
    ::madvise(pages, block_bytes_, MADV_DONTNEED);
    blocks_[block].committed = false;
    blocks_[block].on_small_pages = true;
    released += block_bytes_;
  }
  return released;
}

void KvBlockPool::StoreValues(const float* from, int64_t count, uint8_t* to) const {
  switch (shape_.type) {
    case KvType::kF32: std::memcpy(to, from, static_cast<size_t>(count) * sizeof(float)); return;
    case KvType::kF16: kernels::BestKernels().store_f16(from, count, to); return;
    case KvType::kQ8_0: kernels::BestKernels().store_q8_0(from, count, to); return;
  }
}

// Transposed keys are converted a chunk of a row at a time on the stack,
// with the kernels the rows use (the same bits), and then spread out.
constexpr int64_t kTransposedChunk = 64;

void KvBlockPool::StoreHeadRow(const float* from, uint8_t* head, int32_t slot, bool values) const {
  const int64_t width = shape_.head_dim;
  if (values || !keys_transposed_) {
    StoreValues(from, width, head + slot * shape_.head_row_bytes());
    return;
  }
  uint16_t* halves = reinterpret_cast<uint16_t*>(head) + slot;
  uint16_t converted[kTransposedChunk];
  for (int64_t j0 = 0; j0 < width; j0 += kTransposedChunk) {
    const int64_t n = std::min(kTransposedChunk, width - j0);
    kernels::BestKernels().store_f16(from + j0, n, reinterpret_cast<uint8_t*>(converted));
    for (int64_t j = 0; j < n; ++j) halves[(j0 + j) * options_.block_size] = converted[j];
  }
}

void KvBlockPool::LoadHeadRows(const uint8_t* head, int32_t first, int64_t count, bool values, float* to) const {
  const int64_t width = shape_.head_dim;
  if (values || !keys_transposed_) {
    LoadValues(head + first * shape_.head_row_bytes(), count * width, to);
    return;
  }
  float widened[kTransposedChunk];
  for (int64_t t0 = 0; t0 < count; t0 += kTransposedChunk) {
    const int64_t n = std::min(kTransposedChunk, count - t0);
    for (int64_t j = 0; j < width; ++j) {
      LoadValues(head + 2 * (j * options_.block_size + first + t0), n, widened);
      for (int64_t t = 0; t < n; ++t) to[(t0 + t) * width + j] = widened[t];
    }
  }
}

void KvBlockPool::LoadKeyColumns(const uint8_t* head, int64_t count, float* to, int64_t stride) const {
  for (int64_t j = 0; j < shape_.head_dim; ++j) LoadValues(head + 2 * j * options_.block_size, count, to + j * stride);
}

void KvBlockPool::LoadValues(const uint8_t* from, int64_t count, float* to) const {
  switch (shape_.type) {
    case KvType::kF32: std::memcpy(to, from, static_cast<size_t>(count) * sizeof(float)); return;
    case KvType::kF16: kernels::BestKernels().load_f16(from, count, to); return;
    case KvType::kQ8_0: kernels::BestKernels().load_q8_0(from, count, to); return;
  }
}

}  // namespace edgellm::engine
