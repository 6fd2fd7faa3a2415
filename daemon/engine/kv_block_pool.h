// engine/kv_block_pool.h — KV memory in fixed-size blocks under one budget.
//
// One mapping holds every block; a block stores `block_size` positions of
// keys and values for every layer, so a sequence's cache is just a list of
// block ids (KvCache's block table) and a finished sequence gives its blocks
// back without fragmenting anything. Pages are committed on first write and
// Trim() returns unused ones to the OS, so resident memory follows use.
//
// With prefix caching on, every block a cache fills completely, and the last,
// partly filled block of a cache that is destroyed, is registered under its
// content (KvPrefixIndex): a later cache whose tokens begin the same way
// starts with those blocks — down to the position where its tokens differ —
// instead of computing them, and several caches may hold one block at once. Shared blocks are read-only — a cache copies one
// before writing into it — and blocks no cache holds stay registered, and
// reusable, until their memory is needed (least recently released first).
//
// Not thread-safe: a pool and its caches belong to one thread at a time.
#ifndef EDGELLM_ENGINE_KV_BLOCK_POOL_H_
#define EDGELLM_ENGINE_KV_BLOCK_POOL_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/kv_prefix_index.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class KvCache;

// How the cache stores each key and value: float32; IEEE half precision
// (half the memory and the bytes a step's attention reads, as llama.cpp
// keeps its cache by default; each value rounded to nearest once, when
// written); or GGML's Q8_0 (34 bytes for 32 values: each run of 32 of one
// head's keys or values at one position as int8 steps of its largest
// magnitude / 127, as llama.cpp's --cache-type-k/-v q8_0 keeps them, 53% of
// the bytes of halves; heads of a multiple of 32 values only).
enum class KvType { kF32, kF16, kQ8_0 };

// "f32", "f16" or "q8_0", as configuration names them.
std::string_view KvTypeName(KvType type);
// The type named `name`; InvalidArgument naming the choices otherwise.
absl::StatusOr<KvType> ParseKvType(std::string_view name);

// What one position holds: per layer, keys and values of n_head_kv heads.
struct KvShape {
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  KvType type = KvType::kF32;
  // Values of one position's keys (or values) in one layer.
  int64_t row_values() const { return static_cast<int64_t>(n_head_kv) * head_dim; }
  // Bytes of one head's keys (or values) at one position: head_dim values
  // as `type` stores them.
  int64_t head_row_bytes() const;
};

// InvalidArgument, saying why, for a shape no pool can hold: an empty
// dimension, or a q8_0 cache of heads that are no whole number of its blocks.
absl::Status CheckKvShape(const KvShape& shape);

struct KvPoolOptions {
  int32_t block_size = 16;     // positions per block
  int32_t block_count = 0;     // blocks in the pool
  bool prefix_caching = true;  // register full blocks for reuse
};

class KvBlockPool : public std::enable_shared_from_this<KvBlockPool> {
 public:
  // Maps the memory of every block (committed on first write).
  // InvalidArgument for a shape or option out of range, ResourceExhausted if
  // the mapping fails.
  static absl::StatusOr<std::shared_ptr<KvBlockPool>> Create(KvShape shape, KvPoolOptions options);
  // Blocks of `block_size` positions that fit in `budget_bytes`.
  static int32_t BlocksInBudget(KvShape shape, int32_t block_size, uint64_t budget_bytes);
  // Bytes one block takes (whole pages).
  static uint64_t BlockBytes(KvShape shape, int32_t block_size);
  ~KvBlockPool();
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  const KvShape& shape() const { return shape_; }
  int32_t block_size() const { return options_.block_size; }
  int32_t block_count() const { return options_.block_count; }
  uint64_t block_bytes() const { return block_bytes_; }
  bool prefix_caching() const { return options_.prefix_caching; }
  // Blocks held by at least one cache.
  int32_t used_blocks() const { return used_; }
  // Blocks no cache holds that keep their content for reuse.
  int32_t cached_blocks() const { return static_cast<int32_t>(lru_.size()); }
  // Blocks a cache can still take: free ones and cached ones (evicted on demand).
  int32_t available_blocks() const { return options_.block_count - used_; }
  // Blocks that hold `positions`.
  int32_t BlocksFor(int32_t positions) const { return (positions + block_size() - 1) / block_size(); }

  // An empty cache that may grow to `capacity` positions; it takes blocks as
  // it grows and gives them back when destroyed. Blocks are shared only
  // between caches of the same `prefix_space`: sequences whose keys and
  // values differ for the same tokens (another LoRA adapter) use their own.
  std::unique_ptr<KvCache> NewCache(int32_t capacity, uint64_t prefix_space = 0);
  // A cache that starts with the longest prefix of `tokens`, at most
  // `max_reuse` positions, whose blocks the pool already holds in
  // `prefix_space`; length() says how many positions that is (0 when nothing
  // matches or prefix caching is off).
  std::unique_ptr<KvCache> NewCacheWithPrefix(absl::Span<const TokenId> tokens, int32_t capacity,
                                              int32_t max_reuse, uint64_t prefix_space = 0);

  // Forgets every cached block and gives the memory of blocks no cache holds
  // back to the OS. Returns the bytes released (of blocks written since the
  // last Trim; the others hold no memory).
  uint64_t Trim();

  // The keys (or values) of `layer` in `block`: n_head_kv heads, each
  // block_size · head_dim elements of shape().type, one after another.
  // Within a head, values and most keys lie a position's row at a time;
  // keys_transposed() keys lie a dimension at a time.
  // Inline: attention asks for every block it reads, several times a block.
  uint8_t* LayerData(int32_t block, int32_t layer, bool values) const {
    return base_ + block * block_bytes_ + (2 * static_cast<int64_t>(layer) + (values ? 1 : 0)) * layer_bytes_;
  }
  // Bytes of one head's keys (or values) in a block.
  int64_t head_bytes() const { return head_bytes_; }
  // Where head `head`'s keys (or values) of `layer` in `block` start.
  uint8_t* HeadData(int32_t block, int32_t layer, int64_t head, bool values) const {
    return LayerData(block, layer, values) + head * head_bytes_;
  }
  // Whether a head's keys in a block lie transposed: value j of the block's
  // position t at element j · block_size + t, so that sixteen positions'
  // value j are one register of a decode row's scores (no lanes to fold into
  // each key's sum). Halves, in blocks of a multiple of sixteen positions.
  bool keys_transposed() const { return keys_transposed_; }
  // Stores one head's row of head_dim floats as position `slot` of the head
  // at `head` (HeadData), in the layout its keys or values take.
  void StoreHeadRow(const float* from, uint8_t* head, int32_t slot, bool values) const;
  // Positions [first, first + count) of the head at `head` as floats, a
  // position's head_dim values after another.
  void LoadHeadRows(const uint8_t* head, int32_t first, int64_t count, bool values, float* to) const;
  // Keys of positions [0, count) of the head at `head` whose keys lie
  // transposed, as head_dim rows of `count` floats, row j at to + j · stride
  // (the transposed operand of a prompt's product with its queries).
  void LoadKeyColumns(const uint8_t* head, int64_t count, float* to, int64_t stride) const;
  // Stores `count` floats from `from` as shape().type stores them at `to`
  // (whole rows of a head that lies a position at a time), and reads them back.
  void StoreValues(const float* from, int64_t count, uint8_t* to) const;
  void LoadValues(const uint8_t* from, int64_t count, float* to) const;

 private:
  friend class KvCache;
  KvBlockPool(KvShape shape, KvPoolOptions options, uint64_t block_bytes, uint8_t* base);

  // A free block (evicting the least recently released cached one if need
  // be), held once. ResourceExhausted when every block is held.
  absl::StatusOr<int32_t> Allocate();
  void Retain(int32_t block);
  void Release(int32_t block);
  int32_t holders(int32_t block) const { return blocks_[block].holders; }
  bool registered(int32_t block) const { return index_.Contains(block); }
  void Unregister(int32_t block) { index_.Erase(block); }
  // Registers `block`, just filled with `tokens` after `parent`. If an
  // identical block is registered already, returns that one, held in place of
  // `block` (which is released); otherwise returns `block`.
  int32_t Register(int32_t block, int32_t parent, absl::Span<const TokenId> tokens, uint64_t prefix_space);
  // Registers the partly filled last block of a cache about to give it back,
  // unless it is registered or an identical one is.
  void RegisterTail(int32_t block, int32_t parent, absl::Span<const TokenId> tokens, uint64_t prefix_space);
  void CopyBlock(int32_t from, int32_t to);
  KvBlockParent ParentOf(int32_t block) const;
  // The parent key of a block after `parent` (-1: the first block, whose key
  // is the prefix space).
  KvBlockParent KeyOf(int32_t parent, uint64_t prefix_space) const;

  struct BlockState {
    int32_t holders = 0;
    uint64_t generation = 0;              // bumped on every allocation
    bool committed = false;               // handed out since the last Trim: its pages may be resident
    bool on_small_pages = false;          // trimmed: its huge-page hint withdrawn until handed out again
    std::list<int32_t>::iterator in_lru;  // valid while cached
  };

  const KvShape shape_;
  const KvPoolOptions options_;
  const uint64_t block_bytes_;
  uint8_t* const base_;  // block_count * block_bytes_, from mmap
  const int64_t layer_bytes_;  // one layer's keys (or values) of a block
  const int64_t head_bytes_;   // one head's of those
  const bool keys_transposed_;
  std::vector<BlockState> blocks_;
  std::vector<int32_t> free_;  // never used, or released unregistered
  std::list<int32_t> lru_;     // cached: released but registered; least recently released first
  int32_t used_ = 0;
  KvPrefixIndex index_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_KV_BLOCK_POOL_H_
